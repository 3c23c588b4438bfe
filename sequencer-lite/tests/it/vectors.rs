//! `docs/op-vectors.json`: signed operations by their fields, with the message their signature
//! covers and their canonical encoding, for an implementation in another language to check
//! itself against byte for byte; `docs/signing-params.json`: the constants of the signature
//! scheme. Both files are what this build computes (`KEEL_WRITE_VECTORS=1` rewrites them). An
//! independent implementation in JavaScript (`scripts/citizen.mjs`, Node's standard library
//! only) reproduces every message and encoding from the fields alone and verifies every
//! signature; and Keel verifies the signatures it makes.

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

/// What an implementation of the signature scheme needs: the two moduli, the curve, its
/// generator, and Poseidon's textbook round constants and MDS matrix.
fn signing_params() -> Value {
    use halo2_proofs::halo2curves::{ff::PrimeField, grumpkin};
    let fe = |x: &keel_state::Fr| fr_to_hex(x);
    let (rc, mds) = keel_state::poseidon::textbook();
    let one = {
        let mut b = [0u8; 32];
        b[0] = 1;
        SecretKey::from_bytes(&b).unwrap()
    };
    let (gx, gy) = one.public_key().xy();
    json!({
        "about": "Keel's signatures: Schnorr over Grumpkin (y^2 = x^3 + b over BN254's scalar \
                  field) with the challenge from Keel's Poseidon sponge; see docs/api.md and \
                  state/src/signature.rs. Field elements 0x big-endian.",
        "fr_modulus": keel_state::Fr::MODULUS,
        "scalar_modulus": grumpkin::Fr::MODULUS,
        "curve_b": -17,
        "generator": { "x": fe(&gx), "y": fe(&gy) },
        "challenge_domain": keel_state::poseidon::Domain::Challenge as u64,
        "poseidon": {
            "t": keel_state::poseidon::T,
            "rate": keel_state::poseidon::RATE,
            "full_rounds": keel_state::poseidon::R_F,
            "partial_rounds": keel_state::poseidon::R_P,
            "round_constants": rc.iter().map(|r| r.iter().map(fe).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "mds": mds.iter().map(|r| r.iter().map(fe).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
    })
}

/// `docs/NAME` is `value` (rewritten first under `KEEL_WRITE_VECTORS=1`); its path.
fn golden(name: &str, value: &Value) -> PathBuf {
    let path = repo().join("docs").join(name);
    let want = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("KEEL_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap();
    assert!(
        have == want,
        "docs/{name} differs from what this build computes (KEEL_WRITE_VECTORS=1 rewrites it)"
    );
    path
}

/// `node scripts/citizen.mjs ARGS`: (success, stdout).
fn script(args: &[&str]) -> (bool, String) {
    let out = Command::new("node")
        .arg(repo().join("scripts/citizen.mjs"))
        .args(args)
        .output()
        .expect("node runs (./keel.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_independent_implementation_signs_operations_this_build_accepts() {
    golden("signing-params.json", &signing_params());
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.key");
    let sk = SecretKey::from_seed(&[9; 32]);
    std::fs::write(&key_file, hex::encode(sk.to_bytes())).unwrap();
    let k = key_file.to_str().unwrap();
    let (ok, pk) = script(&["pubkey", k]);
    assert!(ok, "{pk}");
    assert_eq!(pk.trim(), hex::encode(sk.public_key().to_bytes()));
    let signed = [
        vec!["transfer", "3", "4", "10", "2"],
        vec![
            "transfer",
            "0",
            "1",
            "18446744073709551615",
            "9007199254740993",
        ],
        vec![
            "withdraw",
            "3",
            "0x00000000000000000000000000000000000c171e",
            "5",
            "7",
        ],
    ];
    for args in signed {
        let mut all = vec!["sign", k];
        all.extend(args.iter().copied());
        let (ok, text) = script(&all);
        assert!(ok, "{text}");
        let body: SubmitBody = serde_json::from_str(text.trim()).unwrap();
        let op = body.signed_op().unwrap();
        op.verify(&sk.public_key())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"));
        assert_eq!(op.amount().to_string(), args[3]);
        assert_eq!(op.nonce().to_string(), args[4]);
        // and signed by another key, it does not verify as this key's
        assert!(op
            .verify(&SecretKey::from_seed(&[8; 32]).public_key())
            .is_err());
    }
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "zz").unwrap();
    let (ok, text) = script(&[
        "sign",
        bad.to_str().unwrap(),
        "transfer",
        "0",
        "1",
        "1",
        "0",
    ]);
    assert!(!ok, "{text}");
}

#[test]
fn the_vector_file_is_what_this_build_computes_and_an_independent_implementation_agrees() {
    golden("signing-params.json", &signing_params());
    let path = golden("op-vectors.json", &vectors());
    let have = std::fs::read_to_string(&path).unwrap();
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
    assert!(
        text.contains("7 of 7 vectors agree (message, encoding, signature)"),
        "{text}"
    );

    // and it catches a difference: one field changed, or one byte of a signature's s
    let original: Value = serde_json::from_str(&have).unwrap();
    let mut amount = original.clone();
    amount["cases"][1]["body"]["transfer"]["amount"] = json!(1_000_001);
    // the signature's s changed in its lowest byte, in the body and the encoding alike: only
    // the signature check can catch it
    let mut sig = original.clone();
    let case = &mut sig["cases"][4];
    let old = case["body"]["withdraw"]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = 2 + 128;
    let byte = u8::from_str_radix(&old[at..at + 2], 16).unwrap() ^ 1;
    let new_sig = format!("{}{byte:02x}{}", &old[..at], &old[at + 2..]);
    let enc = case["encoding"].as_str().unwrap().to_owned();
    case["encoding"] = json!(format!("{}{}", &enc[..enc.len() - 192], &new_sig[2..]));
    case["body"]["withdraw"]["signature"] = json!(new_sig);
    let sig_only = sig.clone();
    for tampered in [amount, sig] {
        let bad = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(bad.path(), tampered.to_string()).unwrap();
        let (ok, text) = script(&["vectors", bad.path().to_str().unwrap()]);
        assert!(!ok, "a tampered vector passed: {text}");
        assert!(text.contains("6 of 7 vectors agree"), "{text}");
    }
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), sig_only.to_string()).unwrap();
    let (_, text) = script(&["vectors", bad.path().to_str().unwrap()]);
    assert!(
        text.contains("vector 4 differs (signature does not verify)"),
        "{text}"
    );
}
