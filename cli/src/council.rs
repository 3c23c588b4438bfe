//! `keel council`: the council's threshold key and its two signing rounds, member by member.
//!
//! ```text
//!  keygen ──▶ group.key (public), member-<i>.share (secret, one per member)
//!  message  (chain, sequence, action) ──▶ M            what the council signs
//!  commit   member i ──▶ nonces file (secret, single use) + commitment C_i      round one
//!  sign     member i, M, every C ──▶ response z_i (the nonces file is removed)  round two
//!  aggregate group.key, M, every C and z ──▶ the council signature (checked here)
//! ```
//!
//! Files hold hex text of the encodings in `keel_state::frost`. Nothing here reaches the L1: the
//! signature goes into an L1 `Council` call.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context};
use clap::{Args, Subcommand};
use keel_committer::{
    sla::{COUNCIL_MEMBERS, COUNCIL_THRESHOLD},
    CouncilAction,
};
use keel_state::{
    field::{fr_from_bytes, fr_to_hex},
    frost::{self, Commitment, GroupKey, KeyShare, SignatureShare, SigningNonces},
    Decode, Encode, Fr, PublicKey,
};
use rand_core::OsRng;

/// The council's commands.
#[derive(Subcommand, Debug)]
pub(crate) enum CouncilCommand {
    /// Deal a t-of-n key: the group key and one secret share file per member (trusted dealer).
    Keygen {
        /// Signatures needed.
        #[arg(long, default_value_t = COUNCIL_THRESHOLD)]
        threshold: u16,
        /// Members.
        #[arg(long, default_value_t = COUNCIL_MEMBERS)]
        members: u16,
        /// Directory for `group.key` and `member-<i>.share` (must not hold them already).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the message the council signs for an action.
    Message(MessageArgs),
    /// Round one, by one member: write single-use nonces, print the commitment.
    Commit {
        /// This member's share file.
        #[arg(long)]
        share: PathBuf,
        /// Where to write the nonces (secret; `sign` removes the file).
        #[arg(long)]
        nonces: PathBuf,
    },
    /// Round two, by one member: print this member's response (and remove the nonces).
    Sign {
        /// This member's share file.
        #[arg(long)]
        share: PathBuf,
        /// The nonces file from `commit`.
        #[arg(long)]
        nonces: PathBuf,
        /// The message (from `message`).
        #[arg(long)]
        message: String,
        /// Every signing member's commitment, this member's included.
        #[arg(long = "commitment", required = true)]
        commitments: Vec<String>,
    },
    /// Check every response and combine them into the council's signature.
    Aggregate {
        /// The group key file.
        #[arg(long)]
        group: PathBuf,
        /// The message.
        #[arg(long)]
        message: String,
        /// Every signing member's commitment.
        #[arg(long = "commitment", required = true)]
        commitments: Vec<String>,
        /// Every signing member's response.
        #[arg(long = "response", required = true)]
        responses: Vec<String>,
    },
}

/// Which action, on which chain, at which council sequence number.
#[derive(Args, Debug)]
pub(crate) struct MessageArgs {
    /// The chain id.
    #[arg(long = "chain-id")]
    chain_id: u64,
    /// The council's next action number (the L1's `council_sequence`).
    #[arg(long)]
    sequence: u64,
    /// Activate exit mode.
    #[arg(long = "exit-mode", conflicts_with = "rotate")]
    exit_mode: bool,
    /// Replace the registered sequencers with these keys (hex), in take-over order.
    #[arg(long, value_delimiter = ',')]
    rotate: Vec<String>,
}

pub(crate) fn read_hex(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))
}

pub(crate) fn decode<T: Decode>(bytes: &[u8], what: &str) -> anyhow::Result<T> {
    T::decode(bytes).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn decode_hex<T: Decode>(text: &str, what: &str) -> anyhow::Result<T> {
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .with_context(|| format!("{what} is not hex"))?;
    decode(&bytes, what)
}

/// Every item of a list given on the command line, decoded.
fn decode_all<T: Decode>(items: &[String], what: &str) -> anyhow::Result<Vec<T>> {
    items.iter().map(|x| decode_hex(x, what)).collect()
}

/// Writes `text` to a new file; an existing file is never overwritten.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The message as `message` prints it: `0x` and big-endian hex.
fn parse_message(text: &str) -> anyhow::Result<Fr> {
    let mut b: [u8; 32] = hex::decode(text.trim().trim_start_matches("0x"))
        .context("the message is not hex")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the message must be 32 bytes"))?;
    b.reverse();
    fr_from_bytes(&b).context("the message is not a field element")
}

fn action(args: &MessageArgs) -> anyhow::Result<CouncilAction> {
    match (args.exit_mode, args.rotate.is_empty()) {
        (true, _) => Ok(CouncilAction::ActivateExitMode),
        (false, false) => Ok(CouncilAction::RotateSequencers(decode_all::<PublicKey>(
            &args.rotate,
            "a sequencer key",
        )?)),
        (false, true) => bail!("name an action: --exit-mode or --rotate KEY,KEY,..."),
    }
}

pub(crate) fn run(cmd: CouncilCommand) -> anyhow::Result<()> {
    match cmd {
        CouncilCommand::Keygen {
            threshold,
            members,
            out,
        } => {
            let (group, shares) = frost::keygen(threshold, members, OsRng)?;
            fs::create_dir_all(&out)?;
            write_new(&out.join("group.key"), &hex::encode(group.encode()))?;
            for s in &shares {
                write_new(
                    &out.join(format!("member-{}.share", s.id)),
                    &hex::encode(s.encode()),
                )?;
            }
            println!("{threshold}-of-{members} council key in {}", out.display());
            println!("group key  {}", hex::encode(group.key.to_bytes()));
            println!("hand member-<i>.share to member i alone; group.key goes into the genesis");
        }
        CouncilCommand::Message(args) => {
            let msg = action(&args)?.message(args.chain_id, args.sequence);
            println!("{}", fr_to_hex(&msg));
        }
        CouncilCommand::Commit { share, nonces } => {
            let share: KeyShare = decode(&read_hex(&share)?, "the share file")?;
            let (n, c) = frost::commit(&share, OsRng);
            write_new(&nonces, &hex::encode(n.encode()))?;
            println!("{}", hex::encode(c.encode()));
        }
        CouncilCommand::Sign {
            share,
            nonces,
            message,
            commitments,
        } => {
            let share: KeyShare = decode(&read_hex(&share)?, "the share file")?;
            let n: SigningNonces = decode(&read_hex(&nonces)?, "the nonces file")?;
            let msg = parse_message(&message)?;
            let commitments: Vec<Commitment> = decode_all(&commitments, "a commitment")?;
            // the nonces are gone before a response exists: they can never sign twice
            fs::remove_file(&nonces)
                .with_context(|| format!("removing the used nonces {}", nonces.display()))?;
            let z = frost::sign(&share, n, &commitments, msg)?;
            println!("{}", hex::encode(z.encode()));
        }
        CouncilCommand::Aggregate {
            group,
            message,
            commitments,
            responses,
        } => {
            let group: GroupKey = decode(&read_hex(&group)?, "the group key file")?;
            let msg = parse_message(&message)?;
            let commitments: Vec<Commitment> = decode_all(&commitments, "a commitment")?;
            let responses: Vec<SignatureShare> = decode_all(&responses, "a response")?;
            let sig = frost::aggregate(&group, &commitments, &responses, msg)?;
            ensure!(
                group.key.verify(&[msg], &sig).is_ok(),
                "the aggregate does not verify under the group key"
            );
            println!("{}", hex::encode(sig.encode()));
        }
    }
    Ok(())
}
