//! Readiness, machine-readably: a process that serves an API writes a [`Ready`] file once its
//! listener is bound (`--ready-file`), and whoever started it waits for that file, never for a
//! line in a log.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// What a ready process announces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Which service (`l1`, `sequencer`, `node`, `committer`, `prover`).
    pub service: String,
    /// Its process id: a file another process left is not taken for this one's.
    pub pid: u32,
    /// The base URL of its API (`http://address:port`).
    pub api: String,
}

/// Why waiting for a ready file ended without one.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The process ended first.
    #[error("the process ended before it was ready")]
    Exited,
    /// It was not ready in time.
    #[error("not ready within {0:?} ({1} did not appear)")]
    Timeout(Duration, PathBuf),
}

impl Ready {
    /// This process, serving `service` on `addr`.
    pub fn new(service: &str, addr: SocketAddr) -> Self {
        Self {
            service: service.into(),
            pid: std::process::id(),
            api: format!("http://{addr}"),
        }
    }

    /// Writes the file atomically (a temporary name, then a rename), so a reader never sees
    /// half of it.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension(format!("tmp{}", self.pid));
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// The file at `path`, if there is a whole one.
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Waits until `path` announces process `pid`, while `alive` says it runs.
    pub fn wait(
        path: &Path,
        pid: u32,
        timeout: Duration,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Self, ReadyError> {
        let start = Instant::now();
        loop {
            if let Some(r) = Self::read(path).filter(|r| r.pid == pid) {
                return Ok(r);
            }
            if !alive() {
                return Err(ReadyError::Exited);
            }
            if start.elapsed() > timeout {
                return Err(ReadyError::Timeout(timeout, path.to_owned()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_file_round_trips_and_names_its_process() {
        let dir = std::env::temp_dir().join(format!("keel-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l1.ready");
        let _ = std::fs::remove_file(&path);
        let r = Ready::new("l1", "127.0.0.1:8545".parse().unwrap());
        // not there yet: a process that ended is reported, and a live one times out
        assert!(matches!(
            Ready::wait(&path, r.pid, Duration::from_secs(5), || false),
            Err(ReadyError::Exited)
        ));
        assert!(matches!(
            Ready::wait(&path, r.pid, Duration::from_millis(60), || true),
            Err(ReadyError::Timeout(..))
        ));
        r.write(&path).unwrap();
        assert_eq!(Ready::read(&path), Some(r.clone()));
        assert_eq!(r.api, "http://127.0.0.1:8545");
        let got = Ready::wait(&path, r.pid, Duration::from_secs(1), || true).unwrap();
        assert_eq!(got, r);
        // another process's file is not this one's
        assert!(matches!(
            Ready::wait(&path, r.pid + 1, Duration::from_millis(60), || true),
            Err(ReadyError::Timeout(..))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
