//! `keel l1` as its own process, and the end to end path through it: the sequencer fed by the
//! queue follower, a prover proving the streamed witnesses, and the committer posting the
//! proofs, all talking to the L1 over its JSON-RPC API; then a forced entry left unserved past
//! its deadline, exit mode activated by an account with no L1 funds, and every account leaving
//! through `keel exit --l1.rpc`, with payouts equal to the L2 total supply.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{
    address_of, Call, Committer, CommitterConfig, EmbeddedChain, Event, ExitReason, Keyed, L1Error,
    QueueFollower, Receipt, Rejection, RpcL1, SettlementLayer,
};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, Shape,
};
use keel_sequencer::{Sequencer, SequencerConfig};
use keel_state::{
    test_utils::{key, signed_transfer},
    BatchNumber, Encode, SecretKey,
};
use serde_json::json;
use tempfile::TempDir;

use crate::keel;

/// One operation per batch at depth 3: the smallest batch circuit (the committer's tests use it
/// too, and share the cached keys and development SRS in `target/tmp/keel-keys`).
pub(crate) const SHAPE: Shape = Shape {
    capacity: 1,
    depth: 3,
    k: 11,
};
const CHAIN: u64 = 7;
/// Short enough to wait out on the wall clock.
const FORCED_INCLUSION_MS: u64 = 3_000;
/// Deposits into accounts 0 and 1.
const FUNDED: [u64; 2] = [1_000, 500];

pub(crate) fn funder() -> SecretKey {
    SecretKey::from_seed(&[0xF0; 32])
}
pub(crate) fn primary() -> SecretKey {
    SecretKey::from_seed(&[0xA0; 32])
}

pub(crate) fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keel-keys")
}

/// `keel prover keygen` for [`SHAPE`] in [`keys_dir`] (cached across runs) with `extra` flags;
/// returns what it printed (the files it wrote, a line each).
fn keygen(extra: &[&str]) -> String {
    let dir = keys_dir();
    let (capacity, depth, k) = (
        SHAPE.capacity.to_string(),
        SHAPE.depth.to_string(),
        SHAPE.k.to_string(),
    );
    let mut args = vec![
        "prover",
        "keygen",
        "--prover.keys-dir",
        dir.to_str().unwrap(),
        "--prover.capacity",
        &capacity,
        "--prover.depth",
        &depth,
        "--prover.k",
        &k,
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = keel(&args);
    assert!(ok, "{err}");
    out
}

/// `keel prover keygen` for [`SHAPE`] (cached across runs), once per test binary; returns the
/// verifier file.
pub(crate) fn verifier_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| PathBuf::from(keygen(&[]).trim()))
        .clone()
}

pub(crate) fn hex(b: &[u8]) -> String {
    format!("0x{}", ::hex::encode(b))
}

fn write_genesis(path: &Path, chain_id: u64) {
    let council = keel_committer::CouncilKey::of(
        &keel_committer::council::dkg(3, 2, rand_core::OsRng)
            .unwrap()
            .1,
    );
    let g = json!({
        "chain_id": chain_id,
        "depth": SHAPE.depth,
        "deadlines": {"block_time_ms": 100, "forced_inclusion_ms": FORCED_INCLUSION_MS},
        "sequencers": [hex(&primary().public_key().encode())],
        "allocations": [{"address": hex(&address_of(&funder().public_key()).0), "amount": 1_000_000}],
        "council": hex(&council.encode()),
    });
    std::fs::write(path, g.to_string()).unwrap();
}

/// A running `keel l1` under the devnet's supervisor ([`keel_devnet::Proc`]), stopped (SIGTERM)
/// when dropped.
pub(crate) struct L1Process {
    proc: keel_devnet::Proc,
    pub(crate) url: String,
    _dir: TempDir,
}

impl L1Process {
    /// Starts it and waits for its ready file; a process that ends first is an error with the
    /// lines of its log that carry the cause.
    pub(crate) fn start(
        dir: &Path,
        verifier: &Path,
        genesis: Option<&Path>,
    ) -> Result<Self, String> {
        let arg = |p: &Path| p.to_string_lossy().into_owned();
        let mut args = vec![
            "l1".to_owned(),
            "--l1.listen".into(),
            "127.0.0.1:0".into(),
            "--l1.dir".into(),
            arg(dir),
            "--l1.verifier".into(),
            arg(verifier),
        ];
        if let Some(g) = genesis {
            args.extend(["--l1.genesis".into(), arg(g)]);
        }
        let run = TempDir::new().unwrap();
        let spec = keel_devnet::Spec {
            name: "keel l1".into(),
            args,
            log: run.path().join("l1.log"),
            ready: run.path().join("l1.ready"),
            env: vec![],
        };
        let mut proc = keel_devnet::Proc::spawn(Path::new(env!("CARGO_BIN_EXE_keel")), spec)
            .map_err(|e| e.to_string())?;
        let never = AtomicBool::new(false);
        let ready = proc
            .wait_ready(Duration::from_secs(120), &never)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            proc,
            url: ready.api,
            _dir: run,
        })
    }

    pub(crate) fn stop(mut self) {
        let status = self.proc.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "keel l1 stopped with {status:?}"
        );
    }
}

pub(crate) fn send(l1: &RpcL1, sk: &SecretKey, call: Call) -> Result<Receipt, L1Error> {
    l1.send(sk, call)
}

pub(crate) fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keel_l1_creates_a_chain_serves_it_and_reopens_it_and_refuses_another() {
    let verifier = verifier_file();
    let dir = TempDir::new().unwrap();
    let chain = dir.path().join("l1");
    let genesis = dir.path().join("genesis.json");
    write_genesis(&genesis, CHAIN);

    let e = L1Process::start(&chain, &verifier, None).err().unwrap();
    assert!(
        e.contains("no chain in") && e.contains("--l1.genesis"),
        "{e}"
    );
    assert!(!chain.exists(), "nothing is created without a genesis");

    let l1 = L1Process::start(&chain, &verifier, Some(&genesis)).unwrap();
    let remote = RpcL1::connect(&l1.url).unwrap();
    assert_eq!(remote.chain_id(), CHAIN);
    let pk = key(0).public_key();
    send(&remote, &funder(), Call::Deposit { pk, amount: 5 }).unwrap();
    // its block producer runs: the head moves on its own
    let h = remote.head().unwrap().height;
    until("a block", Duration::from_secs(10), || {
        remote.head().unwrap().height > h
    });
    let view = remote.rollup().unwrap();
    assert_eq!((view.queue_len, view.depth), (1, SHAPE.depth));
    drop(remote);
    l1.stop();

    // reopened, with or without its genesis file, it is the same chain
    for g in [None, Some(genesis.as_path())] {
        let l1 = L1Process::start(&chain, &verifier, g).unwrap();
        let remote = RpcL1::connect(&l1.url).unwrap();
        let again = remote.rollup().unwrap();
        assert_eq!((again.queue_len, again.checkpoint), (1, view.checkpoint));
        assert!(again.head.height >= view.head.height);
        assert_eq!(remote.queue(0, 8).unwrap().len(), 1);
        drop(remote);
        l1.stop();
    }

    // another genesis, a broken one, and a file that is not a verifier are refused
    let other = dir.path().join("other.json");
    write_genesis(&other, CHAIN + 1);
    let e = L1Process::start(&chain, &verifier, Some(&other))
        .err()
        .unwrap();
    assert!(e.contains("holds another chain"), "{e}");
    std::fs::write(&other, r#"{"chain_id": 1, "depth": 0}"#).unwrap();
    let e = L1Process::start(&dir.path().join("new"), &verifier, Some(&other))
        .err()
        .unwrap();
    assert!(e.contains("is not a genesis"), "{e}");
    let e = L1Process::start(&chain, &genesis, None).err().unwrap();
    assert!(e.contains("is not a verifier file"), "{e}");
}

#[test]
fn batches_committed_over_rpc_then_every_account_exits_through_keel_exit() {
    let _heavy = crate::heavy();
    let verifier = verifier_file();
    let srs = kzg_params_cached(&Srs::Dev, SHAPE.k, &keys_dir()).unwrap();
    let params = MsmParams::new(srs.clone(), cpu_factory());
    let (keys, _) = BatchKeys::load_or_generate(&keys_dir(), &srs, &params, SHAPE).unwrap();
    let prover = Arc::new(BatchProver::new(params, keys));

    let dir = TempDir::new().unwrap();
    let genesis = dir.path().join("genesis.json");
    write_genesis(&genesis, CHAIN);
    let l1_process = L1Process::start(&dir.path().join("l1"), &verifier, Some(&genesis)).unwrap();
    let url = l1_process.url.clone();
    let l1 = Arc::new(RpcL1::connect(&url).unwrap());

    let mut config = SequencerConfig::new(dir.path().join("sequencer"));
    config.depth = SHAPE.depth;
    config.batch_capacity = SHAPE.capacity;
    config.batch_deadline = Duration::from_millis(50);
    let seq = Sequencer::open(config).unwrap();

    let s = seq.clone();
    let committer = Arc::new(
        Committer::open(
            CommitterConfig::new(dir.path().join("committer")),
            l1.clone(),
            Arc::new(Keyed::new(l1.clone(), primary())),
            Box::new(move |n| {
                s.mark_posted(n);
                s.mark_proven(n);
            }),
        )
        .unwrap(),
    );

    // the local prover: witnesses from the stream, proofs to the committer
    let stop = Arc::new(AtomicBool::new(false));
    let stream = seq.subscribe(BatchNumber(1), 8).unwrap();
    let proving = {
        let (committer, stop, prover) = (committer.clone(), stop.clone(), prover.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(item) = stream.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let w = item.witness.expect("a recent batch carries its witness");
                let (proof, _) = prover.prove(&w, |_| {}).unwrap();
                committer.offer(item.batch.encode(), proof.proof).unwrap();
            }
        })
    };

    let s = seq.clone();
    let follower = QueueFollower::spawn(
        l1.clone(),
        seq.status().unwrap().next_l1,
        Duration::from_millis(50),
        move |position, entry| {
            s.submit_l1_blocking(position, entry)
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .unwrap();

    // citizens deposit on the L1; one of them pays another on L2
    for (i, amount) in FUNDED.into_iter().enumerate() {
        let pk = key(i as u32).public_key();
        send(&l1, &funder(), Call::Deposit { pk, amount }).unwrap();
    }
    until("the deposits' batches", Duration::from_secs(60), || {
        seq.status().unwrap().last_batch >= 2
    });
    seq.submit_blocking(signed_transfer(0, 1, 300, 0)).unwrap();

    let s = committer.wait_included(BatchNumber(3), Duration::from_secs(600));
    assert_eq!((s.included, &s.halted), (BatchNumber(3), &None), "{s:?}");
    assert_eq!(seq.progress().borrow().proven, BatchNumber(3));
    let view = l1.rollup().unwrap();
    assert_eq!(view.checkpoint.batch, BatchNumber(3));
    assert_eq!(view.checkpoint.root, seq.root().unwrap());

    // anyone rebuilds the state from L1 data alone and reaches the proven root; kept in a
    // directory, a second run resumes from it
    let rebuilt = dir.path().join("rebuilt");
    let root = keel_state::field::fr_to_hex(&view.checkpoint.root);
    for run in 0..2 {
        let (ok, out, err) = keel(&[
            "reconstruct",
            "--l1.rpc",
            &url,
            "--state.dir",
            rebuilt.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("proven root {root} at batch 3")),
            "{out}"
        );
        let replayed = err.matches("replayed batch").count();
        assert_eq!(replayed, if run == 0 { 3 } else { 0 }, "{err}");
    }
    let (ok, out, err) = keel(&[
        "state",
        "info",
        "--state.dir",
        rebuilt.to_str().unwrap(),
        "--state.depth",
        "3",
    ]);
    assert!(
        ok && out.contains(&root) && out.contains("last batch  3"),
        "{out}{err}"
    );

    // the sequencer stops serving the queue; account 1 forces a transfer that is never served
    drop(follower);
    stop.store(true, Ordering::Relaxed);
    proving.join().unwrap();
    send(&l1, &key(1), Call::Force(signed_transfer(1, 0, 100, 0))).unwrap();

    // an ordinary account, with no L1 funds, activates exit mode once the deadline has passed
    let citizen = SecretKey::from_seed(&[0xC1; 32]);
    assert_eq!(l1.balance(&address_of(&citizen.public_key())).unwrap(), 0);
    let early = send(&l1, &citizen, Call::ActivateExitMode).unwrap_err();
    assert!(
        matches!(early.rejection(), Some(Rejection::ExitModeNotDue { .. })),
        "{early}"
    );
    let mut activated = None;
    until(
        "the forced-inclusion deadline",
        Duration::from_secs(30),
        || {
            activated = send(&l1, &citizen, Call::ActivateExitMode).ok();
            activated.is_some()
        },
    );
    assert_eq!(
        activated.unwrap().events,
        [Event::ExitModeActivated(ExitReason::ForcedInclusion)]
    );

    // every account leaves through `keel exit`, from L1 data alone
    let supply: u64 = FUNDED.iter().sum();
    let mut paid = 0;
    for i in 0..2u32 {
        let key_file = dir.path().join(format!("key-{i}"));
        std::fs::write(&key_file, ::hex::encode(key(i).to_bytes())).unwrap();
        let (ok, out, err) = keel(&[
            "exit",
            "--l1.rpc",
            &url,
            "--key-file",
            key_file.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(err.contains("state rebuilt from L1 data: batch 3"), "{err}");
        let amount: u64 = out
            .split(" exited: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        let recipient = address_of(&key(i).public_key());
        assert_eq!(l1.balance(&recipient).unwrap(), amount, "account {i}");
        paid += amount;
    }
    assert_eq!(paid, supply, "the L1 payouts sum to the L2 total supply");
    let key_file = dir.path().join("key-0");
    let (ok, _, err) = keel(&[
        "exit",
        "--l1.rpc",
        &url,
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("already exited"), "{err}");

    seq.shutdown();
    drop(l1);
    l1_process.stop();
}

/// `keel prover keygen --evm` writes the EVM batch verifier beside the keys: contracts in
/// deployment order, each within EIP-170.
#[test]
fn keygen_writes_the_evm_verifier_within_eip170() {
    let out = keygen(&["--evm"]);
    let evm = out.lines().nth(1).expect("the EVM verifier's file");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(evm).unwrap()).unwrap();
    let parts = json["parts"].as_array().unwrap();
    assert!(!parts.is_empty());
    for p in parts {
        let code = p["deployedBytecode"].as_str().unwrap();
        let bytes = (code.len() - 2) / 2;
        assert!(bytes > 0 && bytes <= 24_576, "a part of {bytes} bytes");
    }
}

/// `keel evm deploy` on anvil: the verifier from `keel prover keygen --evm`, the genesis with a
/// DKG council key; the deployment answers `EvmL1`. Bad input is refused before any
/// transaction.
#[test]
fn evm_deploy_puts_a_rollup_on_anvil() {
    use keel_evm::{
        anvil::{Anvil, AnvilConfig, DEV_KEYS},
        council,
        deploy::{Deployment, EvmGenesis},
        l1::{EvmConfig, EvmL1},
    };
    let anvil = Anvil::start(&AnvilConfig::default()).expect("anvil (npm ci in contracts/)");
    let dir = tempfile::tempdir().unwrap();
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();

    let out = keygen(&["--evm"]);
    let verifier = out.lines().nth(1).unwrap().to_owned();

    let (_, public) = council::dkg(3, 2, rand_core::OsRng).unwrap();
    let (council_x, council_y) = council::group_key(&public).unwrap();
    let signer = |i: usize| {
        DEV_KEYS[i]
            .parse::<alloy::signers::local::PrivateKeySigner>()
            .unwrap()
    };
    let genesis = EvmGenesis {
        chain_id: CHAIN,
        depth: SHAPE.depth,
        failover_timeout_s: 30,
        forced_inclusion_s: 1800,
        proof_s: 7200,
        sequencers: vec![signer(0).address(), signer(1).address()],
        sequencer_keys: vec![primary().public_key(), key(1).public_key()],
        council_x,
        council_y,
    };
    std::fs::write(path("genesis.json"), serde_json::to_vec(&genesis).unwrap()).unwrap();
    let bad = EvmGenesis {
        depth: 0,
        ..genesis.clone()
    };
    std::fs::write(path("bad-genesis.json"), serde_json::to_vec(&bad).unwrap()).unwrap();
    std::fs::write(path("key"), DEV_KEYS[0]).unwrap();
    std::fs::write(path("broke"), "11".repeat(32)).unwrap();
    let url = anvil.url();
    let deploy = |genesis: &str, key: &str, chain: &str, out: &str| {
        keel(&[
            "evm",
            "deploy",
            "--evm.rpc",
            &url,
            "--evm.chain-id",
            chain,
            "--evm.key-file",
            key,
            "--genesis",
            genesis,
            "--verifier",
            &verifier,
            "--out",
            out,
        ])
    };
    let (ok, _, err) = deploy(
        &path("bad-genesis.json"),
        &path("key"),
        "31337",
        &path("d.json"),
    );
    assert!(!ok && err.contains("depth 0"), "{err}");
    let (ok, _, err) = deploy(&path("genesis.json"), &path("key"), "1", &path("d.json"));
    assert!(!ok && err.contains("chain id is 31337"), "{err}");
    let (ok, _, err) = deploy(
        &path("genesis.json"),
        &path("broke"),
        "31337",
        &path("d.json"),
    );
    assert!(!ok && err.contains("no funds"), "{err}");
    assert!(!dir.path().join("d.json").exists());

    let (ok, _, err) = deploy(
        &path("genesis.json"),
        &path("key"),
        "31337",
        &path("d.json"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = deploy(
        &path("genesis.json"),
        &path("key"),
        "31337",
        &path("d.json"),
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let d: Deployment = serde_json::from_slice(&std::fs::read(path("d.json")).unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = rt.block_on(async {
        let config = EvmConfig {
            url: url.clone(),
            evm_chain_id: d.evm_chain_id,
            rollup: d.rollup,
            chain_id: Some(CHAIN),
            confirmations: 1,
        };
        EvmL1::connect(&config, signer(1))
            .await
            .unwrap()
            .state()
            .await
            .unwrap()
    });
    assert_eq!(
        (state.epoch, state.batch_number, state.lease_holder),
        (1, 0, signer(0).address())
    );
}
