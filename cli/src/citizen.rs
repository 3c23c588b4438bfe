//! The citizens' commands: a key, an account, deposits through the L1, transfers and withdrawals
//! through the sequencers, and following an operation to the durability level asked for.
//!
//! ```text
//!  keel key new --key-file K ........ a new key, file mode 0600, the secret never printed
//!  keel deposit --key-file K ........ L1: escrow, queue; wait for the L1's index, then the sequencer
//!  keel transfer --to I --amount N .. sign (nonce from the primary), submit, follow (--wait)
//!  keel withdraw --amount N ......... the same; once proven, the payout as the L1 shows it
//!  keel account I|KEY|FILE .......... the sequencer's view; --proof: the last proven balance and
//!                                     its Merkle proof, from L1 data alone
//!  keel op SEQ ...................... where operation SEQ stands
//! ```
//!
//! Every command prints for people by default and JSON with `--json`. A refusal is an error
//! with a stable reason code (the sequencer's, the L1's, or this client's own: `key_file`,
//! `unreachable`, `timeout`, ...), as `{"error": reason, "message": text}` under `--json`, and an
//! exit status of 1; nothing is sent after a refusal. The sequencers (`--client.sequencer`,
//! repeated or a list) and the L1 (`--l1.rpc`, or `--evm.*`) come from flags or the settings file,
//! which `keel devnet` writes as `client.toml` in its directory.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_committer::{reconstruct, EmbeddedChain, Keyed, L1Error, RpcL1, SettlementLayer, Settler};
use keel_node::keys::KeyFileError;
use keel_sequencer::{
    api::{TransferBody, WithdrawBody},
    Client, ClientError, Event, FollowError, Level, Wallet, WalletError,
};
use keel_state::{AccountIndex, L1Address, MemStore, PublicKey, SignedOp};
use serde_json::{json, Value};

/// A sequencer's API when none is given: `keel sequencer`'s default address.
pub(crate) const DEFAULT_SEQUENCER: &str = "http://127.0.0.1:7545";
/// How long a command follows an operation by default, in seconds.
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 600;

/// `keel key`'s commands.
#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Make a new key: writes it to a new file readable by its owner alone (mode 0600) and
    /// prints its public key; the secret is printed only with --show-secret.
    New(KeyNewArgs),
}

/// Where the new key goes.
#[derive(Args, Debug)]
pub(crate) struct KeyNewArgs {
    /// The file to create (refused if it exists).
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// Also print the secret key (64 hex digits).
    #[arg(long)]
    show_secret: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Where the sequencers and the L1 are, and how to print.
#[derive(Args, Debug, Clone)]
pub(crate) struct Endpoints {
    /// A sequencer's API, the primary's or a standby's (repeat the flag, or give a list): a
    /// request the one in use cannot answer goes to the next.
    #[arg(long = "client.sequencer", default_value = DEFAULT_SEQUENCER, value_delimiter = ',', action = clap::ArgAction::Append)]
    sequencer: Vec<String>,
    /// The embedded L1's JSON-RPC (`keel l1`): deposits, accounts by key, proofs, payouts.
    #[arg(long = "l1.rpc")]
    l1_rpc: Option<String>,
    /// With --l1.rpc: the key file of the L1 account that pays a deposit (default: the
    /// account's own key).
    #[arg(long = "l1.key-file")]
    l1_key_file: Option<PathBuf>,
    // or the rollup contract on an EVM chain (--evm.key-file pays deposits and gas)
    #[command(flatten)]
    evm: crate::evm::EvmL1Args,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Whose account, and how far to follow an operation.
#[derive(Args, Debug, Clone)]
pub(crate) struct Signer {
    /// The account owner's key file (64 hex digits; `keel key new` makes one).
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// The account's index (default: looked up on the L1 by the key).
    #[arg(long)]
    account: Option<u32>,
    /// The nonce to sign with (default: the account's next, as the primary has admitted it).
    #[arg(long)]
    nonce: Option<u64>,
    /// Follow the operation until it is `accepted` (in the primary's log), `replicated` (a
    /// standby holds its batch), `posted` (its batch is L1 data) or `proven` (its batch's proof
    /// is on the L1), across a failover.
    #[arg(long, default_value = "accepted", value_parser = parse_level)]
    wait: Level,
    /// Give up following after this many seconds (the operation stands where it is).
    #[arg(long = "timeout-s", default_value_t = DEFAULT_TIMEOUT_S)]
    timeout_s: u64,
    /// Print the signed operation's JSON body (`POST /v1/ops`) and send nothing.
    #[arg(long)]
    sign_only: bool,
}

/// `keel account`.
#[derive(Args, Debug)]
pub(crate) struct AccountArgs {
    /// The account: its index, its public key (128 hex digits), or a key file.
    account: String,
    /// Also the last proven balance and its Merkle proof, rebuilt from L1 data alone.
    #[arg(long)]
    proof: bool,
    #[command(flatten)]
    at: Endpoints,
}

/// `keel deposit`.
#[derive(Args, Debug)]
pub(crate) struct DepositArgs {
    /// The key file of the account credited (made at the next index if it has none).
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// The amount, in L2 units (on an EVM L1, one unit is one gwei).
    #[arg(long)]
    amount: u64,
    /// Give up waiting for the sequencer to credit it after this many seconds.
    #[arg(long = "timeout-s", default_value_t = DEFAULT_TIMEOUT_S)]
    timeout_s: u64,
    #[command(flatten)]
    at: Endpoints,
}

/// `keel transfer`.
#[derive(Args, Debug)]
pub(crate) struct TransferArgs {
    /// The credited account: its index, its public key, or its key file.
    #[arg(long)]
    to: String,
    /// The amount.
    #[arg(long)]
    amount: u64,
    #[command(flatten)]
    from: Signer,
    #[command(flatten)]
    at: Endpoints,
}

/// `keel withdraw`.
#[derive(Args, Debug)]
pub(crate) struct WithdrawArgs {
    /// The amount, burnt here and paid on the L1 once proven.
    #[arg(long)]
    amount: u64,
    /// The L1 address paid (40 hex digits).
    #[arg(long)]
    recipient: String,
    #[command(flatten)]
    from: Signer,
    #[command(flatten)]
    at: Endpoints,
}

/// `keel op`.
#[derive(Args, Debug)]
pub(crate) struct OpArgs {
    /// The operation's sequence number, as the sequencer answered it.
    seq: u64,
    #[command(flatten)]
    at: Endpoints,
}

/// A refusal with a stable reason code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Refusal {
    reason: String,
    message: String,
}

fn refusal(reason: &str, message: impl Into<String>) -> anyhow::Error {
    Refusal {
        reason: reason.into(),
        message: message.into(),
    }
    .into()
}

/// The reason code of a client's failure: the sequencer's own, or `unreachable`.
fn client_reason(c: &ClientError) -> String {
    match c {
        ClientError::Refused { reason, .. } => reason.as_str().to_owned(),
        ClientError::Http(_) => "unreachable".into(),
        _ => "bad_answer".into(),
    }
}

/// The reason code of an error: the first typed cause that names one.
fn reason(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<Refusal>() {
            return r.reason.clone();
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return client_reason(c);
        }
        if let Some(f) = cause.downcast_ref::<FollowError>() {
            return match f {
                FollowError::Refused(c) => client_reason(c),
                FollowError::Unreachable { .. } => "unreachable".into(),
                FollowError::Timeout { .. } => "timeout".into(),
                FollowError::Replaced { .. } => "replaced".into(),
                _ => "follow".into(),
            };
        }
        match cause.downcast_ref::<WalletError>() {
            Some(WalletError::KeyMismatch { .. }) => return "key_mismatch".into(),
            Some(WalletError::Client(c)) => return client_reason(c),
            _ => {}
        }
        if cause.downcast_ref::<KeyFileError>().is_some() {
            return "key_file".into();
        }
        if let Some(l) = cause.downcast_ref::<keel_evm::l1::EvmL1Error>() {
            use keel_evm::l1::EvmL1Error as E;
            return match l {
                E::NoFunds { .. } => "l1_no_funds",
                E::Refused(_) | E::Reverted(_) => "l1_rejected",
                E::BadUrl { .. } | E::Unreachable { .. } | E::Call { .. } => "l1_unavailable",
                E::ReadOnly(_) => "l1_read_only",
                _ => "l1",
            }
            .into();
        }
        if let Some(l) = cause.downcast_ref::<L1Error>() {
            return match l {
                L1Error::Rejected(r) => serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v["rule"].as_str().map(|s| format!("l1_{s}")))
                    .unwrap_or_else(|| "l1_rejected".into()),
                L1Error::Unavailable { .. } => "l1_unavailable".into(),
                _ => "l1".into(),
            };
        }
    }
    "error".into()
}

/// An error and its causes, each once (a cause already quoted by the one above is left out).
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out += ": ";
            }
            out += &text;
        }
    }
    out
}

/// Runs a citizen's command; a failure is printed (as JSON under `--json`) and exits with 1.
fn report(json: bool, run: impl FnOnce() -> anyhow::Result<Value>) -> anyhow::Result<()> {
    match run() {
        Ok(v) if json => {
            println!("{v}");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => {
            let code = reason(&e);
            if json {
                println!("{}", json!({ "error": code, "message": message(&e) }));
            } else {
                eprintln!("error ({code}): {}", message(&e));
            }
            std::process::exit(1)
        }
    }
}

pub(crate) fn run_key(cmd: KeyCommand) -> anyhow::Result<()> {
    let KeyCommand::New(args) = cmd;
    report(args.json, || {
        let key = keel_node::keys::create_key(&args.key_file)?;
        let pk = hex::encode(key.public_key().to_bytes());
        if !args.json {
            println!("key file:   {}", args.key_file.display());
            println!("public key: {pk}");
            if args.show_secret {
                println!("secret key: {}", hex::encode(key.to_bytes()));
            }
            eprintln!(
                "next: `keel deposit --key-file {} --amount N` creates its account on the L1",
                args.key_file.display()
            );
        }
        let mut v = json!({ "key_file": args.key_file, "public_key": pk });
        if args.show_secret {
            v["secret_key"] = json!(hex::encode(key.to_bytes()));
        }
        Ok(v)
    })
}

/// The L1 a command reaches.
enum L1 {
    Embedded(std::sync::Arc<RpcL1>),
    Evm(std::sync::Arc<keel_evm::settlement::EvmSettlement>),
}

impl L1 {
    fn layer(&self) -> &dyn SettlementLayer {
        match self {
            Self::Embedded(l) => l.as_ref(),
            Self::Evm(l) => l.as_ref(),
        }
    }
}

impl Endpoints {
    fn client(&self) -> Client {
        Client::with_endpoints(self.sequencer.iter().cloned())
    }

    fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?)
    }

    /// The L1 to read, if one is given (on an EVM chain, without a key: reading needs no funds).
    fn l1(&self) -> anyhow::Result<Option<L1>> {
        self.connect(self.evm.connect_reader()?)
    }

    /// The L1 to write to (on an EVM chain, with `--evm.key-file`, which pays).
    fn l1_writer(&self) -> anyhow::Result<Option<L1>> {
        self.connect(self.evm.connect()?)
    }

    fn connect(
        &self,
        evm: Option<std::sync::Arc<keel_evm::settlement::EvmSettlement>>,
    ) -> anyhow::Result<Option<L1>> {
        if let Some(evm) = evm {
            return Ok(Some(L1::Evm(evm)));
        }
        match &self.l1_rpc {
            Some(url) => Ok(Some(L1::Embedded(std::sync::Arc::new(
                RpcL1::connect(url).with_context(|| format!("connecting to the L1 at {url}"))?,
            )))),
            None => Ok(None),
        }
    }

    fn require_l1(&self, what: &str) -> anyhow::Result<L1> {
        self.l1()?.ok_or_else(|| self.no_l1(what))
    }

    fn no_l1(&self, what: &str) -> anyhow::Error {
        refusal(
            "no_l1",
            format!("{what} needs the L1: --l1.rpc URL, or --evm.rpc with --evm.rollup and --evm.chain-id"),
        )
    }

    /// The index of the account whose key is `pk`, as the L1 assigned it.
    fn index_of(&self, pk: &PublicKey) -> anyhow::Result<AccountIndex> {
        let l1 = self.require_l1("finding an account by its key")?;
        l1.layer().account_index(pk)?.ok_or_else(|| {
            refusal(
                "unknown_account",
                format!(
                    "no account has the key {} on the L1 (a first deposit makes one)",
                    hex::encode(pk.to_bytes())
                ),
            )
        })
    }

    /// An account named by its index, its public key or its key file.
    fn resolve(&self, who: &str) -> anyhow::Result<AccountIndex> {
        if let Ok(i) = who.parse::<u32>() {
            return Ok(AccountIndex(i));
        }
        let path = Path::new(who);
        if path.is_file() {
            return self.index_of(&crate::read_key(path)?.public_key());
        }
        let bytes: [u8; 64] = hex::decode(who.trim_start_matches("0x"))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                refusal(
                    "bad_account",
                    format!("{who:?} is not an account index, a public key (128 hex digits) or a key file"),
                )
            })?;
        let pk = PublicKey::from_bytes(&bytes)
            .map_err(|e| refusal("bad_account", format!("{who:?} is not a public key: {e}")))?;
        self.index_of(&pk)
    }
}

pub(crate) fn run_account(args: AccountArgs) -> anyhow::Result<()> {
    report(args.at.json, || {
        let index = args.at.resolve(&args.account)?;
        let rt = args.at.runtime()?;
        let client = args.at.client();
        let view = rt
            .block_on(client.account(index.0))
            .with_context(|| format!("reading account {index}"))?;
        let mut v = serde_json::to_value(&view)?;
        if !args.at.json {
            println!(
                "account {}: balance {}, next nonce {}",
                view.index, view.balance, view.nonce
            );
            println!("key {}", view.pk);
        }
        if args.proof {
            let l1 = args.at.require_l1("a proven balance")?;
            // a line rewritten in place on a terminal, the last one alone otherwise
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let mut last = (0, 0);
            let replayed = reconstruct::replay(l1.layer(), MemStore::new(), |n, of| {
                last = (n.0, of.0);
                if tty {
                    eprint!("\rrebuilding the state from L1 data: batch {n} of {of}");
                }
            })?;
            if tty {
                eprintln!();
            } else {
                eprintln!(
                    "rebuilt the state from L1 data: {} of {} batches",
                    last.0, last.1
                );
            }
            let account = replayed.state.account(index)?.ok_or_else(|| {
                refusal(
                    "unknown_account",
                    format!("account {index} is not in the proven state yet"),
                )
            })?;
            let proof = replayed.state.proof(index)?;
            let root = keel_state::field::fr_to_hex(&replayed.checkpoint.root);
            let siblings: Vec<String> = proof
                .siblings
                .iter()
                .map(keel_state::field::fr_to_hex)
                .collect();
            v["proven"] = json!({
                "batch": replayed.checkpoint.batch.0,
                "root": root,
                "balance": account.balance,
                "nonce": account.nonce,
                "siblings": siblings,
            });
            if !args.at.json {
                println!(
                    "proven in batch {} (root {root}): balance {}, next nonce {}",
                    replayed.checkpoint.batch.0, account.balance, account.nonce
                );
                println!("Merkle proof, siblings from the leaf up:");
                for s in &siblings {
                    println!("  {s}");
                }
            }
        }
        Ok(v)
    })
}

pub(crate) fn run_deposit(args: DepositArgs) -> anyhow::Result<()> {
    report(args.at.json, || {
        let key = crate::read_key(&args.key_file)?;
        let pk = key.public_key();
        args.at
            .evm
            .require_key("a deposit")
            .map_err(|e| refusal("no_l1_key", e.to_string()))?;
        let l1 = args
            .at
            .l1_writer()?
            .ok_or_else(|| args.at.no_l1("a deposit"))?;
        let human = !args.at.json;
        let rt = args.at.runtime()?;
        let client = args.at.client();
        // the balance before, if the account exists: the deposit is credited once it grows by
        // the amount
        let before = match l1.layer().account_index(&pk)? {
            Some(i) => Some(rt.block_on(client.account(i.0))?.balance),
            None => None,
        };
        let receipt = match &l1 {
            L1::Evm(evm) => evm.deposit(&pk, args.amount)?,
            L1::Embedded(rpc) => {
                let payer = match &args.at.l1_key_file {
                    Some(f) => crate::read_key(f)?,
                    None => key.clone(),
                };
                Keyed::new(rpc.as_ref(), payer).deposit(&pk, args.amount)?
            }
        };
        eprintln!(
            "deposit of {} sent to the L1 (block {})",
            args.amount, receipt.height
        );
        let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
        let index = loop {
            if let Some(i) = l1.layer().account_index(&pk)? {
                break i;
            }
            if Instant::now() > deadline {
                return Err(refusal(
                    "timeout",
                    "the L1 did not assign the account an index in time",
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        eprintln!("the L1 assigned account {index}; waiting for the sequencer to credit it");
        let want = before.unwrap_or(0).saturating_add(args.amount);
        let view = loop {
            match rt.block_on(client.account(index.0)) {
                Ok(a) if a.balance >= want => break a,
                // not credited yet, or not created yet
                Ok(_) | Err(ClientError::Refused { status: 404, .. }) => {}
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                // a failover meanwhile: the client moves on to the next endpoint
                Err(_) => {}
            }
            if Instant::now() > deadline {
                return Err(refusal(
                    "timeout",
                    format!("the sequencer did not credit account {index} in time"),
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if human {
            println!(
                "account {}: balance {}, next nonce {}",
                view.index, view.balance, view.nonce
            );
        }
        Ok(json!({
            "account": index.0,
            "amount": args.amount,
            "l1_block": receipt.height,
            "balance": view.balance,
            "nonce": view.nonce,
        }))
    })
}

impl Signer {
    /// The owner's wallet: its key, its account (checked to have this key) and the nonce to
    /// sign with.
    fn wallet(
        &self,
        at: &Endpoints,
        rt: &tokio::runtime::Runtime,
        client: &Client,
    ) -> anyhow::Result<Wallet> {
        let key = crate::read_key(&self.key_file)?;
        let index = match self.account {
            Some(i) => AccountIndex(i),
            None => at.index_of(&key.public_key())?,
        };
        let mut wallet = Wallet::new(client.clone(), key, index);
        rt.block_on(wallet.nonce()).map_err(|e| match e {
            WalletError::KeyMismatch { .. } => refusal(
                "key_mismatch",
                format!("{} is not account {index}'s key", self.key_file.display()),
            ),
            WalletError::Client(c) => {
                anyhow::Error::from(c).context(format!("reading account {index}"))
            }
            e => e.into(),
        })?;
        if let Some(n) = self.nonce {
            wallet.set_nonce(n);
        }
        Ok(wallet)
    }

    /// Submits `op` and follows it, printing each step; the final report once.
    fn send(
        &self,
        at: &Endpoints,
        rt: &tokio::runtime::Runtime,
        wallet: &mut Wallet,
        op: &SignedOp,
    ) -> anyhow::Result<Value> {
        if self.sign_only {
            let body = match op {
                SignedOp::Transfer(t) => json!({ "transfer": TransferBody::of(t) }),
                SignedOp::Withdraw(w) => json!({ "withdraw": WithdrawBody::of(w) }),
            };
            if !at.json {
                println!("{body}");
            }
            return Ok(body);
        }
        let human = !at.json;
        let started = Instant::now();
        let mut events = Vec::new();
        let ticker = Ticker::start(started, self.wait);
        let followed = rt.block_on(wallet.send(
            op,
            self.wait,
            Duration::from_secs(self.timeout_s),
            |e| {
                let t = started.elapsed().as_secs_f64();
                let line = match e {
                    Event::Accepted { endpoint, seq } => {
                        format!("accepted as operation {seq} by {endpoint}")
                    }
                    Event::Reached { level, batch } => match batch {
                        Some(b) => format!("{} (batch {b})", level.name()),
                        None => level.name().to_owned(),
                    },
                    Event::FailedOver { from, to, why } => {
                        format!("failover: {from} stopped answering as the primary ({why}); carrying on with {to}")
                    }
                    Event::Resubmitted { endpoint, seq } => format!(
                        "{endpoint} never got it (accepted, not replicated): sent again, operation {seq}"
                    ),
                    Event::Found { endpoint, batch } => {
                        format!("{endpoint} has it in batch {batch}")
                    }
                    _ => format!("{e:?}"),
                };
                // progress goes to stderr in either mode: under --json, stdout is the result
                ticker.line(&format!("[{t:6.1}s] {line}"));
                events.push(json!({ "at_ms": started.elapsed().as_millis() as u64, "event": line }));
            },
        ));
        ticker.stop();
        let followed = followed?;
        if human {
            println!(
                "{}: account {} nonce {}, {}{} ({:.1} s{})",
                kind(op),
                op.from(),
                op.nonce(),
                followed.level.name(),
                followed
                    .batch
                    .map(|b| format!(" in batch {b}"))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64(),
                match followed.failovers {
                    0 => String::new(),
                    n => format!(", across {n} failover{}", if n > 1 { "s" } else { "" }),
                }
            );
        }
        Ok(json!({
            "op": kind(op),
            "account": op.from().0,
            "nonce": op.nonce(),
            "level": followed.level,
            "batch": followed.batch,
            "endpoint": followed.endpoint,
            "failovers": followed.failovers,
            "events": events,
        }))
    }
}

/// The live display while an operation is followed: on a terminal, a line that counts the
/// seconds waited under the steps so far; elsewhere, the steps alone.
struct Ticker {
    state: Option<std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(started: Instant, target: Level) -> Self {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Self {
                state: None,
                thread: None,
            };
        }
        let state = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            let (stopped, wake) = &*s;
            let mut done = stopped.lock().unwrap_or_else(|p| p.into_inner());
            while !*done {
                eprint!(
                    "\r\x1b[K  waiting for {} … {:.1} s",
                    target.name(),
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
                done = wake
                    .wait_timeout(done, Duration::from_millis(200))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            eprint!("\r\x1b[K");
        });
        Self {
            state: Some(state),
            thread: Some(thread),
        }
    }

    /// A step: printed above the counting line.
    fn line(&self, text: &str) {
        match &self.state {
            Some(s) => {
                let _guard = s.0.lock().unwrap_or_else(|p| p.into_inner());
                eprintln!("\r\x1b[K{text}");
            }
            None => eprintln!("{text}"),
        }
        let _ = std::io::stderr().flush();
    }

    fn stop(mut self) {
        if let Some(s) = &self.state {
            *s.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
            s.1.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn parse_level(text: &str) -> Result<Level, String> {
    [
        Level::Accepted,
        Level::Replicated,
        Level::Posted,
        Level::Proven,
    ]
    .into_iter()
    .find(|l| l.name() == text)
    .ok_or_else(|| format!("{text:?}: one of accepted, replicated, posted, proven"))
}

fn kind(op: &SignedOp) -> &'static str {
    match op {
        SignedOp::Transfer(_) => "transfer",
        SignedOp::Withdraw(_) => "withdraw",
    }
}

pub(crate) fn run_transfer(args: TransferArgs) -> anyhow::Result<()> {
    report(args.at.json, || {
        let rt = args.at.runtime()?;
        let client = args.at.client();
        let mut wallet = args.from.wallet(&args.at, &rt, &client)?;
        let to = args.at.resolve(&args.to)?;
        let op = rt.block_on(wallet.transfer(to, args.amount))?;
        args.from.send(&args.at, &rt, &mut wallet, &op)
    })
}

pub(crate) fn run_withdraw(args: WithdrawArgs) -> anyhow::Result<()> {
    report(args.at.json, || {
        let recipient: L1Address = args
            .recipient
            .parse()
            .map_err(|e: keel_state::BadL1Address| refusal("bad_recipient", e.to_string()))?;
        let rt = args.at.runtime()?;
        let client = args.at.client();
        let mut wallet = args.from.wallet(&args.at, &rt, &client)?;
        let l1 = args.at.l1()?;
        let before = match &l1 {
            Some(l1) if !args.from.sign_only => Some(payout(l1, &recipient)?),
            _ => None,
        };
        let op = rt.block_on(wallet.withdraw(recipient, args.amount))?;
        let mut v = args.from.send(&args.at, &rt, &mut wallet, &op)?;
        if let (Some(l1), Some(before), Level::Proven) = (&l1, before, args.from.wait) {
            // the L1 credits a withdrawal when it takes its batch's proof; its settled reads may
            // trail the primary's word by the confirmations
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut after = payout(l1, &recipient)?;
            while after.1 < before.1 + u128::from(args.amount) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
                after = payout(l1, &recipient)?;
            }
            let credited = after.1.saturating_sub(before.1);
            if !args.at.json {
                println!("the L1 credited {credited} units to {recipient}{}", after.0);
            }
            v["l1_credited"] = json!(credited as u64);
            v["l1_payout"] = json!(after.1 as u64);
        }
        Ok(v)
    })
}

/// What `recipient` holds on the L1, in L2 units: its balance on the embedded L1, what it can
/// claim from the rollup contract on an EVM L1 (with a note of how it claims it).
fn payout(l1: &L1, recipient: &L1Address) -> anyhow::Result<(&'static str, u128)> {
    match l1 {
        L1::Embedded(rpc) => Ok(("", u128::from(rpc.balance(recipient)?))),
        L1::Evm(evm) => {
            let client = evm.client().clone();
            let who = alloy::primitives::Address::from(recipient.0);
            let wei = evm
                .block_on(async move { client.rollup().claimable(who).call().await })
                .map_err(|e| L1Error::unavailable(format!("reading claimable({who}): {e}")))?;
            let units = wei / alloy::primitives::U256::from(1_000_000_000u64);
            Ok((
                " (claimable from the rollup contract: its owner calls claim())",
                units.to::<u128>(),
            ))
        }
    }
}

pub(crate) fn run_op(args: OpArgs) -> anyhow::Result<()> {
    report(args.at.json, || {
        let rt = args.at.runtime()?;
        let client = args.at.client();
        let st = rt
            .block_on(client.op(args.seq))
            .with_context(|| format!("reading operation {}", args.seq))?;
        if !args.at.json {
            println!(
                "operation {} at {}: {}{}",
                st.seq,
                client.base(),
                st.level.name(),
                st.batch
                    .map(|b| format!(" in batch {b}"))
                    .unwrap_or_default()
            );
        }
        Ok(
            json!({ "seq": st.seq, "level": st.level, "batch": st.batch, "endpoint": client.base() }),
        )
    })
}
