//! `keel council`: the council's threshold key, member by member: ZF's FROST over secp256k1
//! (RFC 9591) with its distributed key generation, so no one ever holds the group's secret, and
//! the signing rounds whose signature either L1 checks (the embedded L1 with the crate, the
//! rollup contract with ecrecover).
//!
//! ```text
//!  dkg1 member i ──▶ dkg1-secret-i.json (secret), dkg1-i.json (to everyone)
//!  dkg2 member i, every dkg1-j ──▶ dkg2-secret-i.json (secret), dkg2-i-to-j.json (to member j only)
//!  dkg3 member i, every dkg1-j and dkg2-j-to-i ──▶ key-i.json (secret), group.json (public)
//!       (prints the group key: compressed for the embedded L1's genesis, and its coordinates
//!        for the rollup contract's)
//!  message (embedded L1) chain id, sequence, action ──▶ the message to sign, in hex
//!  commit member i ──▶ nonces-i.json (secret, single use), commitment-i.json
//!  sign member i, the message, every commitment ──▶ share-i.json (the nonces are removed)
//!  aggregate group.json, the message, every commitment and share ──▶ the signature (hex, for
//!       the embedded L1's Council call) and its words (R.x, R.y, z) for the contract
//! ```
//!
//! Every member works in the same directory here for simplicity of the file names; in a real
//! ceremony each keeps its secret files and sends the others only what the arrows say. The
//! message is `keel council message`'s (embedded L1) or the rollup's
//! `councilMessage(action, payload)` (EVM L1), in hex.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context};
use clap::Subcommand;
use keel_evm::council::frost::{
    self,
    keys::{dkg, KeyPackage, PublicKeyPackage},
    round1::{SigningCommitments, SigningNonces},
    round2::SignatureShare,
    Identifier,
};
use rand_core::OsRng;

/// The council's commands.
#[derive(Subcommand, Debug)]
pub(crate) enum CouncilCommand {
    /// DKG round one, by member `id` of `members` with threshold `threshold`.
    Dkg1 {
        /// This member's number (1 to the number of members).
        #[arg(long)]
        id: u16,
        /// How many members the council has.
        #[arg(long)]
        members: u16,
        /// How many must sign.
        #[arg(long)]
        threshold: u16,
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// DKG round two, by member `id`, once every member's round one is in `dir`.
    Dkg2 {
        /// This member's number (1 to the number of members).
        #[arg(long)]
        id: u16,
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// DKG round three, by member `id`: its key, and the group's public key package.
    Dkg3 {
        /// This member's number (1 to the number of members).
        #[arg(long)]
        id: u16,
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// The message the council signs for its action number `sequence` on the embedded L1 (on an
    /// EVM L1, the rollup's `councilMessage(action, payload)` is the message).
    Message {
        /// The rollup's chain id.
        #[arg(long = "chain-id")]
        chain_id: u64,
        /// The council's next action number (the L1's `council_sequence`).
        #[arg(long)]
        sequence: u64,
        /// Activate exit mode.
        #[arg(long, conflicts_with = "rotate")]
        exit_mode: bool,
        /// Replace the registered sequencers by these keys (hex, comma-separated, in take-over
        /// order).
        #[arg(long, value_delimiter = ',')]
        rotate: Vec<String>,
    },
    /// Signing round one, by member `id`.
    Commit {
        /// This member's number (1 to the number of members).
        #[arg(long)]
        id: u16,
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Signing round two, by member `id`, over `message` (hex) and every commitment in `dir`.
    Sign {
        /// This member's number (1 to the number of members).
        #[arg(long)]
        id: u16,
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
        /// The message, in hex (`keel council message`, or the rollup's `councilMessage`).
        #[arg(long)]
        message: String,
    },
    /// The signature, from every commitment and share in `dir`, checked against the group key.
    Aggregate {
        /// The directory of the ceremony's files.
        #[arg(long)]
        dir: PathBuf,
        /// The message, in hex (`keel council message`, or the rollup's `councilMessage`).
        #[arg(long)]
        message: String,
    },
}

fn ident(id: u16) -> anyhow::Result<Identifier> {
    Identifier::try_from(id).map_err(|e| anyhow::anyhow!("member id {id}: {e}"))
}

fn write<T: serde::Serialize>(path: &Path, value: &T, secret: bool) -> anyhow::Result<()> {
    ensure!(
        !path.exists(),
        "{} exists already: refusing to overwrite it",
        path.display()
    );
    let json = serde_json::to_vec_pretty(value)?;
    if secret {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(&json)?;
    } else {
        fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not what it should hold", path.display()))
}

/// Every `<prefix><id><suffix>` file in `dir`, by member.
fn by_member<T: serde::de::DeserializeOwned>(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> anyhow::Result<BTreeMap<Identifier, T>> {
    by_number(dir, prefix, suffix)?
        .into_iter()
        .map(|(id, v)| Ok((ident(id)?, v)))
        .collect()
}

/// Every `<prefix><id><suffix>` file in `dir`, by member number.
fn by_number<T: serde::de::DeserializeOwned>(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> anyhow::Result<BTreeMap<u16, T>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|id| id.parse::<u16>().ok())
        else {
            continue;
        };
        out.insert(id, read(&dir.join(&name))?);
    }
    Ok(out)
}

fn message(hex_text: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(hex_text.trim_start_matches("0x")).context("the message must be hex")
}

pub(crate) fn run(cmd: CouncilCommand) -> anyhow::Result<()> {
    match cmd {
        CouncilCommand::Dkg1 {
            id,
            members,
            threshold,
            dir,
        } => {
            ensure!(
                threshold >= 2 && threshold <= members,
                "need 2 ≤ threshold ≤ members"
            );
            fs::create_dir_all(&dir)?;
            let (secret, package) = dkg::part1(ident(id)?, members, threshold, OsRng)?;
            write(&dir.join(format!("dkg1-secret-{id}.json")), &secret, true)?;
            write(&dir.join(format!("dkg1-{id}.json")), &package, false)?;
        }
        CouncilCommand::Dkg2 { id, dir } => {
            let secret: dkg::round1::SecretPackage =
                read(&dir.join(format!("dkg1-secret-{id}.json")))?;
            let mut others: BTreeMap<_, dkg::round1::Package> = by_member(&dir, "dkg1-", ".json")?;
            others.remove(&ident(id)?);
            let numbers: BTreeMap<Identifier, u16> =
                by_number::<serde_json::Value>(&dir, "dkg1-", ".json")?
                    .into_keys()
                    .map(|n| Ok((ident(n)?, n)))
                    .collect::<anyhow::Result<_>>()?;
            let (secret, packages) = dkg::part2(secret, &others)?;
            write(&dir.join(format!("dkg2-secret-{id}.json")), &secret, true)?;
            for (to, package) in packages {
                let to = numbers[&to];
                write(&dir.join(format!("dkg2-{id}-to-{to}.json")), &package, true)?;
            }
        }
        CouncilCommand::Dkg3 { id, dir } => {
            let me = ident(id)?;
            let secret: dkg::round2::SecretPackage =
                read(&dir.join(format!("dkg2-secret-{id}.json")))?;
            let mut round1: BTreeMap<_, dkg::round1::Package> = by_member(&dir, "dkg1-", ".json")?;
            round1.remove(&me);
            let round2: BTreeMap<_, dkg::round2::Package> =
                by_member(&dir, "dkg2-", &format!("-to-{id}.json"))?;
            let (key, public) = dkg::part3(&secret, &round1, &round2)?;
            write(&dir.join(format!("key-{id}.json")), &key, true)?;
            let group = dir.join("group.json");
            if group.exists() {
                let theirs: PublicKeyPackage = read(&group)?;
                ensure!(
                    theirs == public,
                    "group.json holds another group key than this member's DKG gave"
                );
            } else {
                write(&group, &public, false)?;
            }
            let (x, y) = keel_evm::council::group_key(&public)?;
            println!(
                "group key: {} (x {x:#066x} y {y:#066x})",
                serde_json::to_value(keel_committer::CouncilKey::of(&public))?
                    .as_str()
                    .unwrap_or_default()
            );
        }
        CouncilCommand::Message {
            chain_id,
            sequence,
            exit_mode,
            rotate,
        } => {
            let action = match (exit_mode, rotate.is_empty()) {
                (true, _) => keel_committer::CouncilAction::ActivateExitMode,
                (false, false) => keel_committer::CouncilAction::RotateSequencers(
                    rotate
                        .iter()
                        .map(|k| {
                            hex::decode(k.trim_start_matches("0x"))
                                .ok()
                                .and_then(|b| {
                                    <keel_state::PublicKey as keel_state::Decode>::decode(&b).ok()
                                })
                                .with_context(|| format!("{k} is not a public key (hex)"))
                        })
                        .collect::<anyhow::Result<_>>()?,
                ),
                (false, true) => bail!("pass --exit-mode or --rotate KEYS"),
            };
            println!("{}", hex::encode(action.message(chain_id, sequence)));
        }
        CouncilCommand::Commit { id, dir } => {
            let key: KeyPackage = read(&dir.join(format!("key-{id}.json")))?;
            let (nonces, commitment) = frost::round1::commit(key.signing_share(), &mut OsRng);
            write(&dir.join(format!("nonces-{id}.json")), &nonces, true)?;
            write(
                &dir.join(format!("commitment-{id}.json")),
                &commitment,
                false,
            )?;
        }
        CouncilCommand::Sign {
            id,
            dir,
            message: m,
        } => {
            let key: KeyPackage = read(&dir.join(format!("key-{id}.json")))?;
            let nonces_file = dir.join(format!("nonces-{id}.json"));
            let nonces: SigningNonces = read(&nonces_file)?;
            let commitments: BTreeMap<_, SigningCommitments> =
                by_member(&dir, "commitment-", ".json")?;
            let package = frost::SigningPackage::new(commitments, &message(&m)?);
            // single use: gone before the share exists, whatever happens next
            fs::remove_file(&nonces_file)?;
            let share = frost::round2::sign(&package, &nonces, &key)?;
            write(&dir.join(format!("share-{id}.json")), &share, false)?;
        }
        CouncilCommand::Aggregate { dir, message: m } => {
            let public: PublicKeyPackage = read(&dir.join("group.json"))?;
            let commitments: BTreeMap<_, SigningCommitments> =
                by_member(&dir, "commitment-", ".json")?;
            let shares: BTreeMap<_, SignatureShare> = by_member(&dir, "share-", ".json")?;
            if shares.len() != commitments.len() {
                bail!(
                    "{} commitments but {} shares: every committed member must sign",
                    commitments.len(),
                    shares.len()
                );
            }
            let package = frost::SigningPackage::new(commitments, &message(&m)?);
            let sig = frost::aggregate(&package, &shares, &public)?;
            let [rx, ry, z] = keel_evm::council::signature_words(&sig)?;
            println!(
                "0x{} {rx:#066x} {ry:#066x} {z:#066x}",
                hex::encode(keel_committer::CouncilSignature::from(sig).to_bytes())
            );
        }
    }
    Ok(())
}
