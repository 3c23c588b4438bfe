//! `docs/op-vectors.json`: signed operations by their fields, with the message their signature
//! covers and their canonical encoding, for an implementation in another language to check
//! itself against byte for byte. The file is what this build computes (`KEEL_WRITE_VECTORS=1`
//! rewrites it), and an independent implementation in JavaScript (`scripts/citizen.mjs`, Node's
//! standard library only) reproduces every message and encoding from the fields alone.

use std::{path::PathBuf, process::Command};

use keel_sequencer::api::{SubmitBody, TransferBody, WithdrawBody};
use keel_state::{
    field::fr_to_hex, AccountIndex, Encode, L1Address, SecretKey, SignedOp, Transfer, Withdraw,
};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vectors() -> Value {
    let key = |i: u8| SecretKey::from_seed(&[i; 32]);
    let transfers = [
        (1u8, 0u32, 1u32, 5u64, 0u64),
        (2, 7, 3, 1_000_000, 41),
        (3, u32::MAX, 0, u64::MAX, u64::MAX),
        (4, 12, 12, 0, 1),
    ];
    let withdrawals = [
        (5u8, 0u32, [0x11u8; 20], 5u64, 0u64),
        (6, 3, [0xff; 20], u64::MAX, 9),
        (7, 65_535, [0; 20], 1, u64::MAX),
    ];
    let mut cases = Vec::new();
    let mut case = |sk: &SecretKey, op: SignedOp| {
        let fields = match &op {
            SignedOp::Transfer(t) => json!({ "transfer": TransferBody::of(t) }),
            SignedOp::Withdraw(w) => json!({ "withdraw": WithdrawBody::of(w) }),
        };
        // the body an app posts is exactly these fields
        let body: SubmitBody = serde_json::from_value(fields.clone()).unwrap();
        assert_eq!(body.signed_op().unwrap(), op);
        op.verify(&sk.public_key()).unwrap();
        cases.push(json!({
            "body": fields,
            "public_key": hex::encode(sk.public_key().to_bytes()),
            "message": op.message().iter().map(fr_to_hex).collect::<Vec<_>>(),
            "encoding": hex::encode(op.encode()),
        }));
    };
    for (k, from, to, amount, nonce) in transfers {
        let sk = key(k);
        let t = Transfer::sign(&sk, AccountIndex(from), AccountIndex(to), amount, nonce);
        case(&sk, SignedOp::Transfer(t));
    }
    for (k, from, recipient, amount, nonce) in withdrawals {
        let sk = key(k);
        let w = Withdraw::sign(&sk, AccountIndex(from), L1Address(recipient), amount, nonce);
        case(&sk, SignedOp::Withdraw(w));
    }
    json!({
        "about": "Keel signed operations: each body's fields, the message (field elements, \
                  0x big-endian) its signature covers, and its canonical encoding (hex). \
                  See docs/api.md.",
        "cases": cases,
    })
}

#[test]
fn the_vector_file_is_what_this_build_computes_and_an_independent_implementation_agrees() {
    let path = repo().join("docs/op-vectors.json");
    let want = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("KEEL_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap();
    assert!(
        have == want,
        "docs/op-vectors.json differs from what this build computes (KEEL_WRITE_VECTORS=1 rewrites it)"
    );
    // JavaScript, with nothing of Keel's: every message and encoding from the fields alone
    let out = Command::new("node")
        .arg(repo().join("scripts/citizen.mjs"))
        .arg("vectors")
        .arg(&path)
        .output()
        .expect("node runs (./keel.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("7 of 7 vectors agree"), "{text}");

    // and it catches a difference: one field changed
    let mut tampered: Value = serde_json::from_str(&have).unwrap();
    tampered["cases"][1]["body"]["transfer"]["amount"] = json!(1_000_001);
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), tampered.to_string()).unwrap();
    let out = Command::new("node")
        .arg(repo().join("scripts/citizen.mjs"))
        .arg("vectors")
        .arg(bad.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a tampered vector passed");
}
