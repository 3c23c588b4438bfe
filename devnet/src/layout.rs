//! The devnet's directory: what is in it, how it is created (atomically) and how a running devnet
//! holds it (a lock for its whole life).
//!
//! ```text
//!  <dir>/devnet.json     what the first run fixed (written last: its presence means "complete")
//!       devnet.lock      held (flock) by the running devnet; names its process id
//!       genesis.json     the L1's genesis
//!       keys/            sequencers', funder's, accounts' keys; council/ (public.json, and each
//!                        member's key package from the DKG: member-<i>.json)
//!       logs/<name>.log  each process's output
//!       run/<name>.ready each process's ready file ({service, pid, api})
//!       l1/ sequencer-i/ committer-i/   the processes' data
//! ```
//!
//! A new directory is built under a temporary name beside it and renamed into place, so a reader
//! never sees half of one, and of two devnets creating the same directory at once only one
//! rename succeeds: the other finds a complete devnet, held by the first, and refuses.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use keel_committer::{address_of, Deadlines, Genesis};
use keel_committer::{council, CouncilKey};
use keel_state::SecretKey;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{Config, DevnetError, COUNCIL, DEPOSIT};

/// What a devnet fixes on its first run: `devnet.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The chain id.
    pub chain_id: u64,
    /// The tree's depth.
    pub depth: u8,
    /// Operations per batch.
    pub capacity: usize,
    /// log2 of the batch circuit's rows.
    pub k: u32,
    /// Demo accounts.
    pub accounts: u32,
    /// The L1 (devnets made before anvil have none: embedded).
    #[serde(default)]
    pub l1: crate::L1Kind,
}

/// The devnet's directory and the paths in it.
#[derive(Clone, Debug)]
pub struct Dir {
    /// The directory.
    pub root: PathBuf,
}

impl Dir {
    /// The key directory.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// Sequencer `i`'s key.
    pub fn sequencer_key(&self, i: usize) -> PathBuf {
        self.keys().join(format!("sequencer-{i}.key"))
    }
    /// The key that funds the demo accounts' deposits on the L1.
    pub fn funder_key(&self) -> PathBuf {
        self.keys().join("funder.key")
    }
    /// Demo account `i`'s key.
    pub fn account_key(&self, i: u32) -> PathBuf {
        self.keys().join(format!("account-{i}.key"))
    }
    /// The council's public key package and its members' key packages.
    pub fn council(&self) -> PathBuf {
        self.keys().join("council")
    }
    /// The L1's genesis.
    pub fn genesis(&self) -> PathBuf {
        self.root.join("genesis.json")
    }
    /// `devnet.json`.
    pub fn layout(&self) -> PathBuf {
        self.root.join("devnet.json")
    }
    /// The lock file.
    pub fn lock(&self) -> PathBuf {
        self.root.join("devnet.lock")
    }
    /// The logs.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Process `name`'s log.
    pub fn log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }
    /// Process `name`'s ready file.
    pub fn ready(&self, name: &str) -> PathBuf {
        self.root.join("run").join(format!("{name}.ready"))
    }
}

/// The devnet's hold on its directory: an exclusive `flock` on `devnet.lock`, released when this
/// is dropped (or the process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.to_owned(),
        source,
    }
}

impl DirLock {
    /// Takes the lock on `dir` (whose `devnet.lock` it creates if missing), or says who holds it.
    pub fn take(dir: &Path) -> Result<Self, DevnetError> {
        let path = dir.join("devnet.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(DevnetError::InUse {
                    dir: dir.to_owned(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        file.rewind().map_err(io(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(Self { _file: file })
    }
}

pub use keel_node::keys::{read_key, write_key};

fn new_key() -> SecretKey {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    SecretKey::from_seed(&seed)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A prepared directory: its layout, whether it was resumed, and the lock held on it.
#[derive(Debug)]
pub struct Prepared {
    /// The directory.
    pub dir: Dir,
    /// What it holds.
    pub layout: Layout,
    /// `false` when this run created it.
    pub resumed: bool,
    /// The lock, held while this lives.
    pub lock: DirLock,
}

/// The devnet's council: its first `COUNCIL.0` members' key packages (a threshold) and the
/// public package.
pub(crate) fn read_council(dir: &Dir) -> Result<crate::chain::Council, DevnetError> {
    let read = |f: PathBuf| -> Result<Vec<u8>, DevnetError> { std::fs::read(&f).map_err(io(&f)) };
    let public = serde_json::from_slice(&read(dir.council().join("public.json"))?)?;
    let mut members = std::collections::BTreeMap::new();
    for i in 1..=COUNCIL.0 {
        let f = dir.council().join(format!("member-{i}.json"));
        let key: council::frost::keys::KeyPackage =
            serde_json::from_slice(&read(f.clone())?).map_err(|_| DevnetError::Key { path: f })?;
        members.insert(*key.identifier(), key);
    }
    Ok((members, public))
}

/// Creates the devnet (keys, council, genesis) on the first run, atomically; checks a resumed
/// one. Either way the directory is locked for as long as the result lives. The flags are
/// checked first by [`crate::check`].
pub fn prepare(cfg: &Config) -> Result<Prepared, DevnetError> {
    let wanted = Layout {
        chain_id: cfg.chain_id,
        depth: cfg.depth,
        capacity: cfg.capacity,
        k: cfg.k,
        accounts: cfg.accounts,
        l1: cfg.l1,
    };
    let dir = Dir {
        root: cfg.dir.clone(),
    };
    // at most twice: a lost race to create it finds it created
    for _ in 0..2 {
        if dir.layout().exists() {
            let lock = DirLock::take(&dir.root)?;
            let text = std::fs::read_to_string(dir.layout()).map_err(io(&dir.layout()))?;
            let held: Layout =
                serde_json::from_str(&text).map_err(|source| DevnetError::BadLayout {
                    path: dir.layout(),
                    source,
                })?;
            if held != wanted {
                return Err(DevnetError::LayoutMismatch {
                    dir: dir.root.clone(),
                    held,
                });
            }
            return Ok(Prepared {
                dir,
                layout: held,
                resumed: true,
                lock,
            });
        }
        let empty = match std::fs::read_dir(&dir.root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(&dir.root)(e)),
        };
        if !empty {
            return Err(DevnetError::NotADevnet(dir.root.clone()));
        }
        match create(cfg, &dir, &wanted)? {
            Some(lock) => {
                return Ok(Prepared {
                    dir,
                    layout: wanted,
                    resumed: false,
                    lock,
                })
            }
            None => continue,
        }
    }
    Err(DevnetError::InUse {
        dir: dir.root,
        holder: None,
    })
}

/// Builds the devnet in a temporary directory beside `dir`, locked, and renames it into place;
/// `None` if another process put one there first.
fn create(cfg: &Config, dir: &Dir, layout: &Layout) -> Result<Option<DirLock>, DevnetError> {
    let parent = match dir.root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = dir
        .root
        .file_name()
        .map_or_else(|| "devnet".into(), |n| n.to_string_lossy().into_owned());
    let tmp = Dir {
        root: parent.join(format!(
            ".{name}.creating-{}-{:016x}",
            std::process::id(),
            OsRng.next_u64()
        )),
    };
    std::fs::create_dir(&tmp.root).map_err(io(&tmp.root))?;
    let built = (|| {
        let lock = DirLock::take(&tmp.root)?;
        fill(cfg, &tmp, layout)?;
        Ok::<_, DevnetError>(lock)
    })();
    let lock = match built {
        Ok(lock) => lock,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp.root);
            return Err(e);
        }
    };
    // the lock is on the file, which moves with its directory
    match std::fs::rename(&tmp.root, &dir.root) {
        Ok(()) => Ok(Some(lock)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp.root);
            if dir.layout().exists() {
                Ok(None)
            } else {
                Err(io(&dir.root)(e))
            }
        }
    }
}

/// Everything a new devnet holds; `devnet.json` last.
fn fill(cfg: &Config, dir: &Dir, layout: &Layout) -> Result<(), DevnetError> {
    for d in [dir.keys(), dir.council(), dir.logs(), dir.root.join("run")] {
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let sequencers: Vec<SecretKey> = (0..2).map(|_| new_key()).collect();
    for (i, k) in sequencers.iter().enumerate() {
        write_key(&dir.sequencer_key(i), k)?;
    }
    let funder = new_key();
    write_key(&dir.funder_key(), &funder)?;
    for i in 0..cfg.accounts {
        write_key(&dir.account_key(i), &new_key())?;
    }
    // the council, from FROST(secp256k1)'s DKG: each member's key package, and the public one
    let (members, public) = council::dkg(COUNCIL.1, COUNCIL.0, OsRng)?;
    let public_file = dir.council().join("public.json");
    std::fs::write(&public_file, serde_json::to_vec_pretty(&public)?).map_err(io(&public_file))?;
    for (i, key) in (1..).zip(members.values()) {
        let f = dir.council().join(format!("member-{i}.json"));
        std::fs::write(&f, serde_json::to_vec_pretty(key)?).map_err(io(&f))?;
    }
    let genesis = Genesis {
        chain_id: cfg.chain_id,
        time_ms: now_ms(),
        depth: cfg.depth,
        deadlines: Deadlines {
            block_time: Duration::from_millis(cfg.block_time_ms),
            failover_timeout: Duration::from_millis(cfg.failover_timeout_ms),
            forced_inclusion: Duration::from_millis(cfg.forced_inclusion_ms),
            proof: Duration::from_millis(cfg.proof_ms),
        },
        sequencers: sequencers.iter().map(|k| k.public_key()).collect(),
        allocations: vec![(
            address_of(&funder.public_key()),
            DEPOSIT * u64::from(cfg.accounts) + 1 + crate::CITIZEN_FUNDS,
        )],
        council: CouncilKey::of(&public),
    };
    genesis.check().map_err(DevnetError::Genesis)?;
    std::fs::write(dir.genesis(), serde_json::to_string_pretty(&genesis)?)
        .map_err(io(&dir.genesis()))?;
    std::fs::write(dir.layout(), serde_json::to_string_pretty(layout)?)
        .map_err(io(&dir.layout()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            dir: dir.to_owned(),
            depth: 8,
            capacity: 4,
            k: 12,
            accounts: 2,
            ..Config::default()
        }
    }

    #[test]
    fn a_created_devnet_is_locked_while_held_and_resumes_afterwards() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(&tmp.path().join("net"));
        let first = prepare(&cfg).unwrap();
        assert!(!first.resumed);
        assert!(first.dir.layout().is_file() && first.dir.sequencer_key(1).is_file());
        // held: a second devnet is refused, naming the holder, and changes nothing
        let keys = std::fs::read(first.dir.sequencer_key(0)).unwrap();
        match prepare(&cfg) {
            Err(DevnetError::InUse { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()))
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(std::fs::read(first.dir.sequencer_key(0)).unwrap(), keys);
        drop(first);
        let again = prepare(&cfg).unwrap();
        assert!(again.resumed);
        // a different layout is refused with what the directory holds
        drop(again);
        let other = Config {
            accounts: 3,
            ..cfg.clone()
        };
        assert!(matches!(
            prepare(&other),
            Err(DevnetError::LayoutMismatch { held, .. }) if held.accounts == 2
        ));
        // no temporary directory is left beside it
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("net")]);
    }

    #[test]
    fn devnets_created_at_the_same_moment_leave_one_usable_directory() {
        for round in 0..8 {
            let tmp = tempfile::tempdir().unwrap();
            let cfg = config(&tmp.path().join(format!("net-{round}")));
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            prepare(&cfg).map(|p| (p.resumed, p))
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // both ran in this process, so both may hold a lock only if one finished before the
            // other looked: at least one created it, and whoever did not was refused or resumed
            let created = results
                .iter()
                .filter(|r| matches!(r, Ok((false, _))))
                .count();
            assert_eq!(created, 1, "round {round}: {results:?}");
            for r in &results {
                match r {
                    Ok(_) | Err(DevnetError::InUse { .. }) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            drop(results);
            // the directory is whole: its keys are the genesis's sequencers. (Another test of
            // this binary may fork a child while a lock's file is open here; the child holds it
            // until it execs, which closes it, so a refusal may last that long.)
            let start = std::time::Instant::now();
            let p = loop {
                match prepare(&cfg) {
                    Err(DevnetError::InUse { .. })
                        if start.elapsed() < std::time::Duration::from_secs(2) =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    r => break r.unwrap_or_else(|e| panic!("round {round}: {e}")),
                }
            };
            let genesis: Genesis =
                serde_json::from_slice(&std::fs::read(p.dir.genesis()).unwrap()).unwrap();
            for i in 0..2 {
                let k = read_key(&p.dir.sequencer_key(i)).unwrap();
                assert_eq!(genesis.sequencers[i], k.public_key());
            }
        }
    }
}
