//! A local anvil, started on a free port and stopped when dropped.
//!
//! The binary comes from `contracts/node_modules` (the pinned `@foundry-rs/anvil` package, which
//! `./keel.sh` installs with npm), or from `KEEL_ANVIL`.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Why anvil could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// No binary was found.
    #[error("no anvil binary: run `npm ci` in contracts/ (./keel.sh does) or set KEEL_ANVIL")]
    NotInstalled,
    /// The process failed to start.
    #[error("starting {path}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It started but did not answer in time.
    #[error("anvil did not answer on port {port} within {waited:?}")]
    NotReady {
        /// Its port.
        port: u16,
        /// How long it was given.
        waited: Duration,
    },
}

/// Settings of a local anvil.
#[derive(Clone, Debug)]
pub struct AnvilConfig {
    /// Seconds between blocks; `None` mines a block per transaction.
    pub block_time: Option<u64>,
    /// The EVM chain id.
    pub chain_id: u64,
    /// Funded dev accounts.
    pub accounts: u32,
    /// Where its output goes (`None`: nowhere).
    pub log: Option<PathBuf>,
}

impl Default for AnvilConfig {
    fn default() -> Self {
        Self {
            block_time: None,
            chain_id: 31337,
            accounts: 10,
            log: None,
        }
    }
}

/// A running anvil; killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
}

/// The anvil binary: `KEEL_ANVIL`, else the native binary of the npm package.
pub fn binary() -> Result<PathBuf, AnvilError> {
    if let Some(p) = std::env::var_os("KEEL_ANVIL") {
        return Ok(PathBuf::from(p));
    }
    let scope = crate::repo_root().join("contracts/node_modules/@foundry-rs");
    let entries = std::fs::read_dir(&scope).map_err(|_| AnvilError::NotInstalled)?;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let bin = e.path().join("bin/anvil");
        if name.starts_with("anvil-") && bin.is_file() {
            return Ok(bin);
        }
    }
    Err(AnvilError::NotInstalled)
}

impl Anvil {
    /// Starts anvil on a free port and waits until it answers.
    pub fn start(config: &AnvilConfig) -> Result<Self, AnvilError> {
        let path = binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|source| AnvilError::Spawn {
                path: path.clone(),
                source,
            })?
            .port();
        let mut cmd = Command::new(&path);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &config.chain_id.to_string()])
            .args(["--accounts", &config.accounts.to_string()])
            .args(["--code-size-limit", "24576"])
            .stdin(Stdio::null());
        match &config.log {
            Some(log) => {
                let file = std::fs::File::create(log).map_err(|source| AnvilError::Spawn {
                    path: log.clone(),
                    source,
                })?;
                let err = file.try_clone().map_err(|source| AnvilError::Spawn {
                    path: log.clone(),
                    source,
                })?;
                cmd.stdout(file).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        if let Some(t) = config.block_time {
            cmd.args(["--block-time", &t.to_string()]);
        }
        let child = cmd.spawn().map_err(|source| AnvilError::Spawn {
            path: path.clone(),
            source,
        })?;
        let anvil = Self { child, port };
        let waited = Duration::from_secs(20);
        let start = Instant::now();
        while start.elapsed() < waited {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(anvil);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(AnvilError::NotReady { port, waited })
    }

    /// Its JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How it ended, if it has.
    pub fn ended(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secret keys of anvil's default dev accounts (from its default mnemonic), as anvil
/// prints them; index `i` is account `i`.
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];
