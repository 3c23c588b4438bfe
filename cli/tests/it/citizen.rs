//! A citizen's session against `keel devnet` on anvil, with nothing but `keel` and a script:
//! two new keys; deposits through the rollup contract; a transfer followed to `proven`; a
//! transfer signed and submitted as a JSON body by a JavaScript client that has nothing of
//! Keel's (`scripts/citizen.mjs`); a withdrawal followed to `proven` and credited
//! by the contract; the account with its proven balance and Merkle proof. Then every kind of bad
//! input, each refused with its reason code and changing nothing.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{devnet::settings_on, l1::verifier_file, Keel};

/// `keel --config CLIENT ARGS --json`: (success, stdout as JSON, all of it as text).
fn citizen(client: &Path, args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["--config", client.to_str().unwrap()];
    all.extend_from_slice(args);
    all.push("--json");
    Keel::spawn(&all).finish()
}

fn ok(client: &Path, args: &[&str]) -> Value {
    let (ok, v, text) = citizen(client, args);
    assert!(ok, "keel {args:?}: {text}");
    v
}

/// Refused with `reason`.
fn refused(client: &Path, args: &[&str], reason: &str) {
    let (ok, v, text) = citizen(client, args);
    assert!(!ok, "keel {args:?} was not refused: {text}");
    assert_eq!(v["error"], reason, "keel {args:?}: {text}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{text}"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `node scripts/citizen.mjs ARGS`: (success, its answer).
fn script(args: &[&str]) -> (bool, Value) {
    let out = Command::new("node")
        .arg(repo().join("scripts/citizen.mjs"))
        .args(args)
        .output()
        .expect("node runs (./keel.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        serde_json::from_str(text.trim()).unwrap_or(Value::String(text.into_owned())),
    )
}

#[test]
fn a_citizen_deposits_transfers_and_withdraws_on_an_anvil_devnet() {
    let _heavy = crate::heavy();
    verifier_file();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("keel.toml");
    settings_on(&config, "anvil");
    let dir = tmp.path().join("devnet");
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--config")
        .arg(&config)
        .args(["devnet", "--devnet.duration", "1800", "--devnet.dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("devnet.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(tmp.path().join("devnet.log")).unwrap_or_default();
    let client = dir.join("client.toml");
    let start = Instant::now();
    while !client.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no client.toml:\n{}",
            log()
        );
        assert!(devnet.try_wait().unwrap().is_none(), "{}", log());
        thread::sleep(Duration::from_millis(200));
    }
    let session = std::panic::catch_unwind(|| session(&client, tmp.path()));
    let pid = rustix::process::Pid::from_child(&devnet);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = devnet.wait().unwrap();
    if let Err(e) = session {
        eprintln!("devnet log:\n{}", log());
        std::panic::resume_unwind(e);
    }
    assert_eq!(status.code(), Some(130), "{}", log());
}

fn session(client: &Path, tmp: &Path) {
    let settings = std::fs::read_to_string(client).unwrap();
    let sequencer = settings
        .lines()
        .find_map(|l| l.strip_prefix("sequencer = [\""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .to_owned();
    let (me, other) = (tmp.join("me.key"), tmp.join("other.key"));
    let (me_s, other_s) = (me.to_str().unwrap(), other.to_str().unwrap());
    for k in [me_s, other_s] {
        let v = ok(client, &["key", "new", "--key-file", k]);
        assert_eq!(v["public_key"].as_str().unwrap().len(), 128);
        assert!(
            v.get("secret_key").is_none(),
            "the secret is printed only when asked"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&me).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // deposits through the rollup contract, credited by the sequencer
    let mine = ok(client, &["deposit", "--key-file", me_s, "--amount", "1000"]);
    let theirs = ok(
        client,
        &["deposit", "--key-file", other_s, "--amount", "10"],
    );
    assert_eq!(
        (mine["balance"].as_u64(), theirs["balance"].as_u64()),
        (Some(1000), Some(10))
    );
    let i_me = mine["account"].as_u64().unwrap().to_string();

    // a transfer, followed to proven
    let t = ok(
        client,
        &[
            "transfer",
            "--key-file",
            me_s,
            "--to",
            other_s,
            "--amount",
            "7",
            "--wait",
            "proven",
        ],
    );
    assert_eq!(
        (t["level"].as_str(), t["nonce"].as_u64()),
        (Some("proven"), Some(0)),
        "{t}"
    );

    // keel signs without sending
    let body = ok(
        client,
        &[
            "transfer",
            "--key-file",
            me_s,
            "--to",
            other_s,
            "--amount",
            "3",
            "--sign-only",
        ],
    );
    assert_eq!(body["transfer"]["nonce"], 1, "{body}");
    // a transfer signed and sent by JavaScript that has nothing of Keel's: the key file read,
    // the message built, Schnorr over Grumpkin with Poseidon computed, the JSON body posted
    let i_other = theirs["account"].as_u64().unwrap().to_string();
    let (signed, body) = script(&["sign", me_s, "transfer", &i_me, &i_other, "3", "1"]);
    assert!(signed, "{body}");
    let body_file = tmp.join("body.json");
    std::fs::write(&body_file, body.to_string()).unwrap();
    let (sent, answer) = script(&[
        "submit",
        &sequencer,
        body_file.to_str().unwrap(),
        "accepted",
    ]);
    assert!(sent, "{answer}");
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["level"].as_str()),
        (Some(202), Some("accepted")),
        "{answer}"
    );
    // a malformed body from the same script: refused, typed
    let (sent, answer) = script(&["raw", &sequencer, r#"{"transfer": {"from": 1}}"#]);
    assert!(!sent);
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["error"].as_str()),
        (Some(400), Some("bad_request")),
        "{answer}"
    );

    // a withdrawal, followed to proven, then credited by the contract
    let recipient = "0x00000000000000000000000000000000000c171e";
    let w = ok(
        client,
        &[
            "withdraw",
            "--key-file",
            me_s,
            "--amount",
            "20",
            "--recipient",
            recipient,
            "--wait",
            "proven",
        ],
    );
    assert_eq!(
        (w["level"].as_str(), w["nonce"].as_u64()),
        (Some("proven"), Some(2)),
        "{w}"
    );
    assert_eq!(w["l1_credited"], 20, "{w}");

    // the account: as admitted, and as proven on the L1 with its Merkle proof
    let a = ok(client, &["account", me_s, "--proof"]);
    assert_eq!(
        (a["balance"].as_u64(), a["nonce"].as_u64()),
        (Some(970), Some(3)),
        "{a}"
    );
    assert_eq!(
        (
            a["proven"]["balance"].as_u64(),
            a["proven"]["nonce"].as_u64()
        ),
        (Some(970), Some(3)),
        "{a}"
    );
    assert!(
        !a["proven"]["siblings"].as_array().unwrap().is_empty(),
        "{a}"
    );
    let op = ok(client, &["op", "1"]);
    assert!(op["level"].is_string(), "{op}");

    // bad input: refused with its reason, nothing changed
    let bad = tmp.join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let missing = tmp.join("missing.key");
    let (bad_s, missing_s) = (bad.to_str().unwrap(), missing.to_str().unwrap());
    let transfer = |key: &str, extra: &[&str], reason: &str| {
        let mut args = vec![
            "transfer",
            "--key-file",
            key,
            "--to",
            other_s,
            "--amount",
            "1",
        ];
        args.extend_from_slice(extra);
        refused(client, &args, reason);
    };
    transfer(bad_s, &[], "key_file");
    transfer(missing_s, &[], "key_file");
    transfer(other_s, &["--account", &i_me], "key_mismatch");
    transfer(me_s, &["--nonce", "0"], "stale_nonce");
    transfer(
        me_s,
        &["--client.sequencer", "http://127.0.0.1:9"],
        "unreachable",
    );
    refused(
        client,
        &["transfer", "--key-file", me_s, "--to", "7", "--amount", "1"],
        "unknown_account",
    );
    refused(
        client,
        &[
            "transfer",
            "--key-file",
            me_s,
            "--to",
            other_s,
            "--amount",
            "1000000",
        ],
        "insufficient_balance",
    );
    refused(client, &["account", "200"], "index_out_of_range");
    refused(
        client,
        &[
            "withdraw",
            "--key-file",
            me_s,
            "--amount",
            "1",
            "--recipient",
            "0x12",
        ],
        "bad_recipient",
    );
    // a deposit paid from an EVM account with no funds
    let poor = tmp.join("poor.evm-key");
    std::fs::write(&poor, format!("0x{}", "42".repeat(32))).unwrap();
    let (ok_, v, text) = citizen(
        client,
        &[
            "deposit",
            "--key-file",
            me_s,
            "--amount",
            "5",
            "--evm.key-file",
            poor.to_str().unwrap(),
        ],
    );
    assert!(!ok_, "{text}");
    assert_eq!(v["error"], "l1_no_funds", "{text}");
    let after = ok(client, &["account", me_s]);
    assert_eq!(
        (after["balance"].as_u64(), after["nonce"].as_u64()),
        (Some(970), Some(3)),
        "{after}"
    );
}
