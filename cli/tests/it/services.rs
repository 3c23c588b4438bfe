//! `keel committer` and `keel prover run` refuse bad settings with a clear message before they
//! serve or create anything. (Both running for real, with a failover, are in `failover.rs`.)

use std::net::TcpListener;

use keel_state::SecretKey;
use tempfile::TempDir;

use crate::{
    keel,
    l1::{verifier_file, L1Process},
};

fn closed_url() -> String {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{addr}")
}

#[test]
fn a_committer_and_a_prover_refuse_bad_settings_before_creating_anything() {
    let dir = TempDir::new().unwrap();
    let d = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    std::fs::write(d("bad-key"), "zz").unwrap();
    // a well-formed key that no genesis registered
    let stranger = SecretKey::from_seed(&[0x5A; 32]);
    std::fs::write(d("stranger-key"), ::hex::encode(stranger.to_bytes())).unwrap();
    std::fs::write(d("not-a-verifier"), b"hello").unwrap();
    let verifier = verifier_file();
    let verifier = verifier.to_str().unwrap();
    let committer = |l1: &str, key: &str, verifier: &str| {
        keel(&[
            "committer",
            "--l1.rpc",
            l1,
            "--l1.verifier",
            verifier,
            "--committer.key-file",
            key,
            "--committer.sequencer",
            "http://127.0.0.1:1",
            "--committer.dir",
            &d("committer"),
            "--committer.listen",
            "127.0.0.1:0",
        ])
    };
    let nowhere = closed_url();
    let (ok, _, err) = committer(&nowhere, &d("bad-key"), verifier);
    assert!(!ok && err.contains("64 hex digits"), "{err}");
    let (ok, _, err) = committer(&nowhere, &d("stranger-key"), &d("not-a-verifier"));
    assert!(!ok && err.contains("not-a-verifier"), "{err}");
    let (ok, _, err) = committer(&nowhere, &d("stranger-key"), verifier);
    assert!(!ok && err.contains("connecting to the L1"), "{err}");
    // a running L1 that does not list the key
    let l1 =
        L1Process::start(&dir.path().join("l1"), &verifier_file(), Some(&genesis(&d))).unwrap();
    let (ok, _, err) = committer(&l1.url, &d("stranger-key"), verifier);
    assert!(!ok && err.contains("not a registered sequencer"), "{err}");
    assert!(!dir.path().join("committer").exists(), "no store was made");
    let (ok, _, err) = keel(&["committer", "--l1.rpc", &l1.url]);
    assert!(!ok && err.contains("--l1.verifier"), "{err}");

    let prover = |shard: &str, l1: &str| {
        keel(&[
            "prover",
            "run",
            "--l1.rpc",
            l1,
            "--prover.sequencers",
            "http://127.0.0.1:1",
            "--prover.committers",
            "http://127.0.0.1:2",
            "--prover.shard",
            shard,
            "--prover.keys-dir",
            &d("keys"),
            "--prover.listen",
            "127.0.0.1:0",
        ])
    };
    for (shard, want) in [
        ("2/2", "the index must be below the count"),
        ("1", "a shard is i/P"),
        ("0/x", "shard count"),
    ] {
        let (ok, _, err) = prover(shard, &l1.url);
        assert!(!ok && err.contains(want), "{shard}: {err}");
    }
    let (ok, _, err) = prover("0/1", &nowhere);
    assert!(!ok && err.contains("connecting to the L1"), "{err}");
    let (ok, _, err) = keel(&["prover", "run", "--l1.rpc", &l1.url]);
    assert!(!ok && err.contains("--prover.sequencers"), "{err}");
    // a shape no circuit is made for
    let (ok, _, err) = keel(&[
        "prover",
        "run",
        "--l1.rpc",
        &l1.url,
        "--prover.sequencers",
        "http://127.0.0.1:1",
        "--prover.committers",
        "http://127.0.0.1:2",
        "--prover.k",
        "40",
        "--prover.keys-dir",
        &d("keys"),
    ]);
    assert!(!ok && err.contains("k must be in"), "{err}");
    assert!(!dir.path().join("keys").exists(), "no keys were made");
    let (ok, _, err) = keel(&["sequencer", "--sequencer.proving", "elsewhere"]);
    assert!(
        !ok && err.contains("local") && err.contains("remote"),
        "{err}"
    );
    l1.stop();
}

/// A genesis with one registered sequencer (not the stranger).
fn genesis(d: &dyn Fn(&str) -> String) -> std::path::PathBuf {
    use keel_state::Encode;
    let council = keel_committer::CouncilKey::of(
        &keel_committer::council::dkg(3, 2, rand_core::OsRng)
            .unwrap()
            .1,
    );
    let g = serde_json::json!({
        "chain_id": 3,
        "depth": 3,
        "sequencers": [crate::l1::hex(&crate::l1::primary().public_key().encode())],
        "allocations": [],
        "council": crate::l1::hex(&council.encode()),
    });
    let path = std::path::PathBuf::from(d("genesis.json"));
    std::fs::write(&path, g.to_string()).unwrap();
    path
}
