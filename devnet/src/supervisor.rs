//! The devnet's processes: each started with a ready file, its output in a log, watched, and
//! restarted with back-off when it dies unexpectedly.
//!
//! A process announces readiness in its ready file ([`keel_http::Ready`]: its pid and the API it
//! serves); nothing here reads a log to learn that. Logs are read only to explain a failure, and
//! then only the lines that carry a cause ([`cause_lines`]).

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use keel_http::{Ready, ReadyError};
use serde::Serialize;

use crate::DevnetError;

/// How long a process gets to stop on SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// The first wait before a restart; it doubles on each restart that follows within
/// [`STABLE`], up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A process that has run this long is well again: its back-off starts over.
pub const STABLE: Duration = Duration::from_secs(60);
/// Restarts within [`STABLE`] of each other after which a process is given up on.
pub const MAX_RESTARTS: u32 = 5;

/// Set in the environment of the devnet's processes to its process id: each stops when the
/// devnet ends, even when the devnet is killed outright.
pub const PARENT_ENV: &str = "KEEL_DEVNET_PID";

/// How to start one process.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Its name in the devnet (`l1`, `sequencer-0`, `prover-1`, …): its log and ready file.
    pub name: String,
    /// Its arguments to the `keel` binary (without `--ready-file`, which is added).
    pub args: Vec<String>,
    /// Its log.
    pub log: PathBuf,
    /// Its ready file.
    pub ready: PathBuf,
    /// Environment variables set for it.
    pub env: Vec<(String, String)>,
}

/// A restart, as the summary reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// The process.
    pub name: String,
    /// How it ended (`signal: 9 (SIGKILL)`, `exit status: 1`).
    pub ended: String,
    /// The lines of its log that carry the cause, if any did.
    pub cause: Vec<String>,
    /// How long it was down before it was started again, in milliseconds.
    pub down_ms: u64,
}

/// A supervised process.
pub struct Proc {
    exe: PathBuf,
    spec: Spec,
    child: Child,
    started: Instant,
    /// Killed on purpose: not restarted until [`Proc::respawn`].
    held: bool,
    /// Since when it is down, how it ended, when it is started again, and whether a signal
    /// ended it (then its log holds no cause: the signal is the cause).
    down: Option<(Instant, String, Instant, bool)>,
    /// Restarts in the current unstable stretch.
    streak: u32,
    /// Restarts in all.
    restarts: u32,
    /// The first wait before a restart.
    first_backoff: Duration,
}

impl Proc {
    /// Starts `spec` from `exe` (its old ready file removed first).
    pub fn spawn(exe: &Path, spec: Spec) -> Result<Self, DevnetError> {
        let child = start(exe, &spec)?;
        Ok(Self {
            exe: exe.to_owned(),
            spec,
            child,
            started: Instant::now(),
            held: false,
            down: None,
            streak: 0,
            restarts: 0,
            first_backoff: FIRST_BACKOFF,
        })
    }

    /// Sets the first wait before a restart (default [`FIRST_BACKOFF`]).
    pub fn with_first_backoff(mut self, first: Duration) -> Self {
        self.first_backoff = first;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its log.
    pub fn log(&self) -> &Path {
        &self.spec.log
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Waits for its ready file (`timeout` at most), failing with its cause if it ends first.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        interrupted: &AtomicBool,
    ) -> Result<Ready, DevnetError> {
        let pid = self.pid();
        let ready = self.spec.ready.clone();
        let child = &mut self.child;
        let r = Ready::wait(&ready, pid, timeout, || {
            !interrupted.load(Ordering::Acquire) && matches!(child.try_wait(), Ok(None))
        });
        match r {
            Ok(r) => Ok(r),
            Err(_) if interrupted.load(Ordering::Acquire) => Err(DevnetError::Interrupted),
            Err(ReadyError::Exited) => Err(self.failure()),
            Err(ReadyError::Timeout(..)) => Err(DevnetError::Timeout {
                what: format!("{} to be ready", self.spec.name),
                logs: self.spec.log.clone(),
            }),
        }
    }

    /// Whether it runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether it is held down on purpose.
    pub fn held(&self) -> bool {
        self.held
    }

    /// Watches it: a process that died unexpectedly is restarted after its back-off, and the
    /// restart returned; one that keeps dying is given up on with its cause.
    pub fn supervise(&mut self) -> Result<Option<Restart>, DevnetError> {
        if self.held {
            return Ok(None);
        }
        if let Some((since, ended, at, signalled)) = &self.down {
            if Instant::now() < *at {
                return Ok(None);
            }
            let cause = if *signalled {
                Vec::new()
            } else {
                flagged_lines(&read_log(&self.spec.log), 6)
            };
            let restart = Restart {
                name: self.spec.name.clone(),
                ended: ended.clone(),
                cause,
                down_ms: since.elapsed().as_millis() as u64,
            };
            self.child = start(&self.exe, &self.spec)?;
            self.started = Instant::now();
            self.down = None;
            self.restarts += 1;
            return Ok(Some(restart));
        }
        let (status, signalled) = match self.child.try_wait() {
            Ok(None) => {
                if self.started.elapsed() > STABLE {
                    self.streak = 0;
                }
                return Ok(None);
            }
            Ok(Some(s)) => (
                s.to_string(),
                std::os::unix::process::ExitStatusExt::signal(&s).is_some(),
            ),
            Err(e) => (e.to_string(), false),
        };
        if self.streak >= MAX_RESTARTS {
            return Err(DevnetError::GaveUp {
                name: self.spec.name.clone(),
                restarts: self.streak,
                ended: status,
                log: self.spec.log.clone(),
                cause: cause_lines(&read_log(&self.spec.log), 12),
            });
        }
        let backoff = (self.first_backoff * 2u32.pow(self.streak)).min(MAX_BACKOFF);
        self.streak += 1;
        eprintln!(
            "keel devnet: {} ended ({status}); restarting it in {:.1} s",
            self.spec.name,
            backoff.as_secs_f64()
        );
        let now = Instant::now();
        self.down = Some((now, status, now + backoff, signalled));
        Ok(None)
    }

    /// SIGKILLs it and holds it down until [`Proc::respawn`].
    pub fn kill(&mut self) {
        self.held = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again (after a [`Proc::kill`]).
    pub fn respawn(&mut self) -> Result<(), DevnetError> {
        self.child = start(&self.exe, &self.spec)?;
        self.started = Instant::now();
        self.held = false;
        self.down = None;
        Ok(())
    }

    /// An error that it stopped, with the lines of its log that say why.
    pub fn failure(&mut self) -> DevnetError {
        let ended = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .map_or_else(|| "running".into(), |s| s.to_string());
        DevnetError::Child {
            name: self.spec.name.clone(),
            ended,
            log: self.spec.log.clone(),
            cause: cause_lines(&read_log(&self.spec.log), 12),
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; not restarted after this. Returns how it
    /// ended (`None` if that could not be read).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.held = true;
        if !self.alive() {
            return self.child.try_wait().ok().flatten();
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while self.alive() {
            if start.elapsed() > STOP_GRACE {
                eprintln!("keel devnet: {} did not stop; killing it", self.spec.name);
                let _ = self.child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start(exe: &Path, spec: &Spec) -> Result<Child, DevnetError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DevnetError::Io { path, source }
    };
    match std::fs::remove_file(&spec.ready) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&spec.ready)(e)),
    }
    if let Some(d) = spec.ready.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(io(&spec.log))?;
    let err = out.try_clone().map_err(io(&spec.log))?;
    let mut cmd = Command::new(exe);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .arg("--ready-file")
        .arg(&spec.ready)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // its own process group: a Ctrl-C in the terminal reaches the devnet, which stops the
    // processes in order
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(io(exe))
}

fn read_log(path: &Path) -> String {
    // the end of it: a long run's log is large, and the cause is near its end
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(256 * 1024);
    String::from_utf8_lossy(&text[from..]).into_owned()
}

/// The lines of a log that carry a failure's cause, the last `max` of them: errors and warnings
/// from the logger, `Error:` and the `Caused by:` chain an `anyhow` main prints, a panic's
/// message. Stack frames (`  12: keel::node::run`, `at src/node.rs:40:5`), the `stack backtrace:`
/// heading and the hint about `RUST_BACKTRACE` are left out. With none, the last plain lines.
pub fn cause_lines(log: &str, max: usize) -> Vec<String> {
    let out = flagged_lines(log, max);
    if !out.is_empty() {
        return out;
    }
    let mut out: Vec<String> = log
        .lines()
        .map(strip_ansi)
        .filter(|l| !l.trim().is_empty() && !is_frame(l.trim()))
        .map(|l| l.trim().to_owned())
        .collect();
    let from = out.len().saturating_sub(max);
    out.split_off(from)
}

/// The lines [`cause_lines`] flags, without its fallback to the last plain lines.
fn flagged_lines(log: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // inside an error's `Caused by:` chain; right after a panic's location (its message follows)
    let (mut chain, mut panic) = (false, false);
    for raw in log.lines() {
        let line = strip_ansi(raw);
        let t = line.trim();
        if t.is_empty() || is_frame(t) || t == "stack backtrace:" || t.starts_with("note: ") {
            chain = chain && !t.is_empty();
            continue;
        }
        let level = [" ERROR ", " WARN "].iter().any(|l| line.contains(l));
        let head = t.starts_with("Error:") || t.contains("panicked at");
        if t == "Caused by:" {
            chain = true;
            out.push(t.to_owned());
        } else if level || head || panic || (chain && line.starts_with(' ')) {
            out.push(t.to_owned());
            chain = chain || head;
        } else {
            chain = false;
        }
        panic = t.contains("panicked at");
    }
    let from = out.len().saturating_sub(max);
    out.split_off(from)
}

/// `12: keel::node::run` or `at /path/src/node.rs:40:5`.
fn is_frame(t: &str) -> bool {
    if let Some(rest) = t.strip_prefix("at ") {
        return rest.contains(".rs:") || rest.starts_with('/') || rest.starts_with("./");
    }
    let Some((n, rest)) = t.split_once(": ") else {
        return false;
    };
    n.chars().all(|c| c.is_ascii_digit())
        && (rest.starts_with('<')
            || (!rest.contains(' ') && (rest.contains("::") || rest.starts_with("0x"))))
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ … final byte in @..~
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_its_error_chain_and_warnings_never_its_stack_frames() {
        let log = "\
2026-12-06T10:00:00.000Z  INFO keel::node: primary in epoch 2
2026-12-06T10:00:01.000Z  WARN keel::node: the L1 did not answer: connection refused
\x1b[2m2026-12-06T10:00:02.000Z\x1b[0m \x1b[31mERROR\x1b[0m keel::node: fenced
thread 'main' panicked at cli/src/node.rs:40:5:
the lease moved
stack backtrace:
   0: __rustc::rust_begin_unwind
   1: core::panicking::panic_fmt
             at /rustc/abc/library/core/src/panicking.rs:75:14
   2: keel::node::run
   3: <alloc::boxed::Box<F> as core::ops::FnOnce<A>>::call_once
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
Error: opening the sequencer in /tmp/x

Caused by:
    0: the write-ahead log
    1: IO error: lock hold by current process
";
        let cause = cause_lines(log, 20);
        assert_eq!(
            cause,
            vec![
                "2026-12-06T10:00:01.000Z  WARN keel::node: the L1 did not answer: connection refused",
                "2026-12-06T10:00:02.000Z ERROR keel::node: fenced",
                "thread 'main' panicked at cli/src/node.rs:40:5:",
                "the lease moved",
                "Error: opening the sequencer in /tmp/x",
                "Caused by:",
                "0: the write-ahead log",
                "1: IO error: lock hold by current process",
            ]
        );
        assert_eq!(cause_lines(log, 2).len(), 2);
        // nothing flagged: the last plain lines, frames still left out
        let plain = "starting\n   0: keel::main\nlistening\n";
        assert_eq!(cause_lines(plain, 5), vec!["starting", "listening"]);
    }

    #[test]
    fn a_process_that_dies_is_restarted_with_back_off_and_given_up_on_when_it_keeps_dying() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = Spec {
            name: "failing".into(),
            // `sh -c 'echo Error: …; exit 3' --ready-file <path>`
            args: vec!["-c".into(), "echo 'Error: no disk'; exit 3".into()],
            log: tmp.path().join("failing.log"),
            ready: tmp.path().join("run/failing.ready"),
            env: vec![],
        };
        let mut p = Proc::spawn(Path::new("/bin/sh"), spec)
            .unwrap()
            .with_first_backoff(Duration::from_millis(50));
        let mut restarts = Vec::new();
        let start = Instant::now();
        let gave_up = loop {
            match p.supervise() {
                Ok(Some(r)) => restarts.push(r),
                Ok(None) => {}
                Err(e) => break e,
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{restarts:?}");
            thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(restarts.len() as u32, MAX_RESTARTS);
        assert_eq!(p.restarts(), MAX_RESTARTS);
        assert!(restarts[0].ended.contains('3'), "{:?}", restarts[0]);
        assert_eq!(restarts[0].cause, vec!["Error: no disk"]);
        // each wait is longer than the one before
        for w in restarts.windows(2) {
            assert!(w[1].down_ms > w[0].down_ms, "{restarts:?}");
        }
        match gave_up {
            DevnetError::GaveUp { name, cause, .. } => {
                assert_eq!(name, "failing");
                assert_eq!(cause.last().map(String::as_str), Some("Error: no disk"));
            }
            e => panic!("{e}"),
        }
        // one ended by a signal: the signal is the cause, not what its log last said
        let spec = Spec {
            name: "killed".into(),
            args: vec!["-c".into(), "echo 'T0  WARN old news'; kill -9 $$".into()],
            log: tmp.path().join("killed.log"),
            ready: tmp.path().join("run/killed.ready"),
            env: vec![],
        };
        let mut p = Proc::spawn(Path::new("/bin/sh"), spec)
            .unwrap()
            .with_first_backoff(Duration::from_millis(10));
        let r = loop {
            if let Some(r) = p.supervise().unwrap() {
                break r;
            }
            thread::sleep(Duration::from_millis(5));
        };
        assert!(r.ended.contains("SIGKILL"), "{r:?}");
        assert!(r.cause.is_empty(), "{r:?}");
        p.stop();
        // one killed on purpose is held down, not restarted
        let spec = Spec {
            name: "sleeper".into(),
            args: vec!["-c".into(), "sleep 30".into()],
            log: tmp.path().join("sleeper.log"),
            ready: tmp.path().join("run/sleeper.ready"),
            env: vec![],
        };
        let mut p = Proc::spawn(Path::new("/bin/sh"), spec).unwrap();
        p.kill();
        assert!(p.held() && !p.alive());
        thread::sleep(Duration::from_millis(200));
        assert!(p.supervise().unwrap().is_none());
        assert!(!p.alive());
        p.respawn().unwrap();
        assert!(p.alive() && !p.held());
        p.stop();
        assert!(!p.alive());
    }
}
