//! The `keel` binary end to end: `keel state` against a real database, `keel l1` and the path
//! through it, failover and partition with real processes, the council, `keel sla`.

use std::{
    process::Command,
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

mod citizen;
mod devnet;
mod failover;
mod l1;
mod services;

/// Tests that run several proving processes take turns: on a 2-core machine, running them
/// together only slows each (and starves the heartbeats the failover tests depend on).
pub(crate) fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

use keel_state::{test_utils::fund, AccountIndex, RocksStore, RocksStoreOptions, State};

pub(crate) fn keel(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .expect("run keel");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn state_info_and_account_read_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (root, proof) = {
        let store = RocksStore::open(dir.path(), RocksStoreOptions::default()).unwrap();
        let mut s = State::open(store, 8).unwrap();
        fund(&mut s, 3, 77);
        let mut root = keel_state::field::fr_to_bytes(&s.root().unwrap());
        root.reverse();
        let proof = keel_state::Encode::encode(&s.proof(AccountIndex(2)).unwrap());
        (format!("0x{}", hex(&root)), hex(&proof))
    };
    let path = dir.path().to_str().unwrap();

    let (ok, out, err) = keel(&["state", "info", "--state.dir", path, "--state.depth", "8"]);
    assert!(ok, "{err}");
    assert!(out.contains("depth       8"), "{out}");
    assert!(out.contains(&root), "{out}");
    assert!(out.contains("last batch  0"), "{out}");

    let (ok, out, err) = keel(&[
        "state",
        "account",
        "2",
        "--state.dir",
        path,
        "--state.depth",
        "8",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("balance  77") && out.contains("nonce    0"),
        "{out}"
    );
    assert!(out.contains(&proof), "{out}");

    let (ok, out, _) = keel(&[
        "state",
        "account",
        "5",
        "--state.dir",
        path,
        "--state.depth",
        "8",
    ]);
    assert!(ok && out.contains("account 5: empty"), "{out}");
}

#[test]
fn bad_inputs_are_refused_without_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    // an empty directory is not a state database, and inspecting it must not create one
    let (ok, _, err) = keel(&["state", "info", "--state.dir", path]);
    assert!(!ok && err.contains("not a Keel state database"), "{err}");
    // a wrong depth is refused
    {
        let store = RocksStore::open(dir.path(), RocksStoreOptions::default()).unwrap();
        State::open(store, 8).unwrap();
    }
    let (ok, _, err) = keel(&["state", "info", "--state.dir", path, "--state.depth", "9"]);
    assert!(!ok && err.contains("depth 8"), "{err}");
    // an index beyond the tree is refused
    let (ok, _, err) = keel(&[
        "state",
        "account",
        "256",
        "--state.dir",
        path,
        "--state.depth",
        "8",
    ]);
    assert!(!ok && err.contains("outside a tree of depth 8"), "{err}");
    // a missing directory is refused
    let (ok, _, err) = keel(&["state", "info", "--state.dir", "/nonexistent/keel"]);
    assert!(!ok && err.contains("no state database"), "{err}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sla_prints_the_recovery_window_and_refuses_an_impossible_council() {
    let (ok, out, _) = keel(&["sla"]);
    assert!(ok);
    assert!(
        out.contains("a standby takes over within") && out.contains("32 s"),
        "{out}"
    );
    assert!(out.contains("30 min") && out.contains("6 of 8"), "{out}");
    let (ok, out, _) = keel(&["sla", "--json", "--l1.failover-timeout-s", "5"]);
    assert!(ok);
    assert!(out.contains("\"failover_s\":7"), "{out}");
    let (ok, _, err) = keel(&["sla", "--council.threshold", "9"]);
    assert!(!ok);
    assert!(
        err.contains("threshold 9 must be between 1 and the council size 8"),
        "{err}"
    );
}

#[test]
fn exit_refuses_bad_input_before_touching_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    std::fs::write(d("key"), "zz").unwrap();
    std::fs::write(d("good-key"), "01".repeat(32)).unwrap();
    std::fs::write(d("verifier"), b"not a verifier").unwrap();
    let exit = |key: &str, verifier: &str| {
        keel(&[
            "exit",
            "--l1.dir",
            &d("l1"),
            "--l1.verifier",
            verifier,
            "--key-file",
            key,
        ])
    };
    let (ok, _, err) = exit(&d("key"), &d("verifier"));
    assert!(!ok && err.contains("64 hex digits"), "{err}");
    let (ok, _, err) = exit(&d("good-key"), &d("missing"));
    assert!(!ok && err.contains("reading"), "{err}");
    let (ok, _, err) = exit(&d("good-key"), &d("verifier"));
    assert!(!ok && err.contains("not a Keel verifier file"), "{err}");
    assert!(!dir.path().join("l1").exists(), "no chain is created");
    let (ok, _, err) = keel(&["exit", "--key-file", &d("good-key")]);
    assert!(
        !ok && err.contains("--l1.rpc"),
        "a chain is required: {err}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}");
    let (ok, _, err) = keel(&["exit", "--l1.rpc", &url, "--key-file", &d("good-key")]);
    assert!(!ok && err.contains("connecting to the L1"), "{err}");

    // against an EVM chain: the settings it needs, a malformed address or key, no node
    let good_key = d("good-key");
    let evm = |extra: &[&str]| {
        let mut a = vec!["exit", "--key-file", &good_key, "--evm.rpc", &url];
        a.extend_from_slice(extra);
        keel(&a)
    };
    let (ok, _, err) = evm(&[]);
    assert!(!ok && err.contains("--evm.rollup"), "{err}");
    let full = |rollup: &str, key: &str| {
        evm(&[
            "--evm.rollup",
            rollup,
            "--evm.chain-id",
            "31337",
            "--evm.key-file",
            key,
        ])
    };
    let (ok, _, err) = full("0x12", &d("good-key"));
    assert!(!ok && err.contains("40-hex-digit address"), "{err}");
    let (ok, _, err) = full(&format!("0x{}", "ab".repeat(20)), &d("key"));
    assert!(!ok && err.contains("EVM key"), "{err}");
    let (ok, _, err) = full(&format!("0x{}", "ab".repeat(20)), &d("good-key"));
    assert!(!ok && err.contains("unreachable"), "{err}");
}

/// `keel council`: a 2-of-3 DKG member by member, a signature by two members over the embedded
/// L1's message that verifies under the group key, as hex and as the contract's words; one
/// member alone is refused, a nonce is used once.
#[test]
fn the_council_runs_its_dkg_and_signs_member_by_member() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let council = |args: &[&str]| {
        let mut a = vec!["council"];
        a.extend_from_slice(args);
        keel(&a)
    };
    for id in ["1", "2", "3"] {
        let (ok, _, err) = council(&[
            "dkg1",
            "--id",
            id,
            "--members",
            "3",
            "--threshold",
            "2",
            "--dir",
            d,
        ]);
        assert!(ok, "{err}");
    }
    for id in ["1", "2", "3"] {
        let (ok, _, err) = council(&["dkg2", "--id", id, "--dir", d]);
        assert!(ok, "{err}");
    }
    let mut keys = Vec::new();
    for id in ["1", "2", "3"] {
        let (ok, out, err) = council(&["dkg3", "--id", id, "--dir", d]);
        assert!(ok, "{err}");
        keys.push(out);
    }
    assert!(keys[0].starts_with("group key: 0x") && keys.iter().all(|k| *k == keys[0]));
    let group: keel_committer::CouncilKey = serde_json::from_value(serde_json::json!(keys[0]
        .split_whitespace()
        .nth(2)
        .unwrap()))
    .unwrap();
    let (ok, _, err) = council(&[
        "dkg1",
        "--id",
        "1",
        "--members",
        "3",
        "--threshold",
        "2",
        "--dir",
        d,
    ]);
    assert!(!ok && err.contains("exists already"), "{err}");

    // the embedded L1's message for its action 0: exit mode on chain 7
    let (ok, out, err) = council(&[
        "message",
        "--chain-id",
        "7",
        "--sequence",
        "0",
        "--exit-mode",
    ]);
    assert!(ok, "{err}");
    let action = keel_committer::CouncilAction::ActivateExitMode;
    assert_eq!(out.trim(), ::hex::encode(action.message(7, 0)));
    let msg = out.trim().to_owned();
    let msg = msg.as_str();
    // one member alone: its share does not make a signature
    let (ok, _, err) = council(&["commit", "--id", "2", "--dir", d]);
    assert!(ok, "{err}");
    let (ok, _, err) = council(&["sign", "--id", "2", "--dir", d, "--message", msg]);
    assert!(!ok, "one commitment is fewer than the threshold: {err}");
    let (ok, _, err) = council(&["sign", "--id", "2", "--dir", d, "--message", msg]);
    assert!(
        !ok && err.contains("nonces-2.json"),
        "the nonces are used once: {err}"
    );
    std::fs::remove_file(dir.path().join("commitment-2.json")).unwrap();

    for id in ["1", "3"] {
        let (ok, _, err) = council(&["commit", "--id", id, "--dir", d]);
        assert!(ok, "{err}");
    }
    for id in ["1", "3"] {
        let (ok, _, err) = council(&["sign", "--id", id, "--dir", d, "--message", msg]);
        assert!(ok, "{err}");
    }
    let (ok, out, err) = council(&["aggregate", "--dir", d, "--message", msg]);
    assert!(ok, "{err}");
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{out}");
    // the signature the embedded L1 takes, under the group key
    let sig: keel_committer::CouncilSignature =
        serde_json::from_value(serde_json::json!(parts[0])).unwrap();
    assert!(group.verify(&action.message(7, 0), &sig));
    assert!(!group.verify(&action.message(7, 1), &sig));
    let words = &parts[1..];

    // the words are a FROST signature under the group key
    use keel_evm::council::frost;
    let public: frost::keys::PublicKeyPackage =
        serde_json::from_slice(&std::fs::read(dir.path().join("group.json")).unwrap()).unwrap();
    let word = |w: &str| ::hex::decode(&w[2..]).unwrap();
    let (rx, ry, z) = (word(words[0]), word(words[1]), word(words[2]));
    let mut sig = vec![2 + (ry[31] & 1)];
    sig.extend_from_slice(&rx);
    sig.extend_from_slice(&z);
    let sig = frost::Signature::deserialize(&sig).unwrap();
    let msg = ::hex::decode(msg).unwrap();
    public.verifying_key().verify(&msg, &sig).unwrap();
}

/// `keel bench --quick --json` runs the MSM, the NTT and a proof on this machine's adapter and
/// CPU: every GPU result equal to the CPU's, every proof verified; on a software adapter the GPU
/// is not timed. Sizes it cannot take are refused.
#[test]
fn bench_quick_checks_every_stage_and_verifies_every_proof() {
    let _heavy = heavy();
    let keys = crate::l1::keys_dir();
    let keys = keys.to_str().unwrap();
    let (ok, out, err) = keel(&[
        "bench",
        "--quick",
        "--json",
        "--bench.runs",
        "1",
        "--prover.keys-dir",
        keys,
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3 + 5, "{r}");
    let software = r["machine"]["software_adapter"] == true;
    for row in rows {
        assert!(row["cpu_ms"].as_f64().unwrap() > 0.0, "{row}");
        if r["machine"]["adapter"].is_string() {
            assert_eq!(row["gpu_equals_cpu"], true, "{row}");
        }
        if software {
            assert!(
                row["gpu_ms"].is_null(),
                "a software adapter is not timed: {row}"
            );
        }
    }
    let backends = r["proof"]["backends"].as_array().unwrap();
    assert!(!backends.is_empty());
    for b in backends {
        assert_eq!(b["verified"], true, "{b}");
    }
    // halo2-axiom's prover (the peer), Keel's on the CPU, and Keel's on the adapter if any
    assert_eq!(backends[0]["backend"], "halo2");
    assert_eq!(backends[1]["backend"], "cpu");
    assert_eq!(
        backends.len(),
        2 + usize::from(r["machine"]["adapter"].is_string())
    );
    assert!(backends[1]["transfers_per_s"].as_f64().unwrap() > 0.0);
    assert!(backends[1]["speedup"].as_f64().unwrap() > 0.0);
    assert_eq!(backends[1]["speedup_over"], "halo2");
    assert!(
        backends[1]["stages"]["keel"]["quotient_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // no device under the CPU: no busy time, no utilisation
    assert!(backends[1]["stages"]["keel"]["gpu_utilisation"].is_null());
    // Keel's CPU prover again as a service runs it: batches laid out while the previous proves
    let p = &backends[1]["pipelined"];
    assert_eq!(p["proofs"], 2, "{p}");
    assert!(p["transfers_per_s"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["over_sequential"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["gpu_utilisation"].is_null(), "{p}");
    assert!(
        backends[0]["pipelined"].is_null(),
        "halo2-axiom's prover is not pipelined"
    );
    // the adapter's proof states its device memory, planned and seen; the CPU's has none
    assert!(backends[1]["device_memory"].is_null());
    if let Some(gpu) = backends.get(2) {
        let m = &gpu["device_memory"];
        let planned = m["planned_bytes"].as_u64().unwrap();
        let peak = m["peak_bytes"].as_u64().unwrap();
        assert!(peak > 0 && peak <= planned, "{m}");
    }
    for bad in [["--bench.msm", "5..2"], ["--bench.proof", "12x3@10"]] {
        let (ok, _, err) = keel(&["bench", "--quick", bad[0], bad[1]]);
        assert!(!ok, "{bad:?} accepted");
        assert!(!err.is_empty());
    }
}

/// `keel ARGS`, its stderr read line by line as it runs.
pub(crate) struct Keel {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Keel {
    pub(crate) fn spawn(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, all) = (child.stderr.take().unwrap(), stderr.clone());
        thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for a line of stderr containing `want`.
    pub(crate) fn until_line(&self, want: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(want) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no line with {want:?}:\n{}", self.stderr.lock().unwrap());
    }

    /// Its exit status and stdout as JSON, once it ends.
    pub(crate) fn finish(mut self) -> (bool, Value, String) {
        use std::io::Read;
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let ok = self.child.wait().unwrap().success();
        // the reader thread has the last lines once the pipe closes
        thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        (
            ok,
            serde_json::from_str(&out).unwrap_or(Value::Null),
            format!("stdout: {out}\nstderr: {err}"),
        )
    }
}
