//! The devnet's L1: anvil with the rollup contracts deployed (the default), or `keel l1`, the
//! embedded chain. The rest of the devnet reads it through the seam every service uses
//! (`SettlementLayer`) and writes through a `Settler`; what differs is here: how it starts,
//! what flags a sequencer gets, how the funder deposits, how the council activates exit mode,
//! and who pays for the exits.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use keel_committer::{
    address_of,
    reconstruct::{self, Replayed},
    Call, CouncilAction, EmbeddedChain, Keyed, RpcL1, SettlementLayer, Settler,
};
use keel_evm::{
    anvil::{Anvil, AnvilConfig, DEV_KEYS},
    council::{self, frost, Action},
    deploy::{deploy, EvmGenesis},
    l1::EvmConfig,
    settlement::EvmSettlement,
    verifier::VerifierContracts,
};
use keel_state::{L1Address, MemStore, PublicKey, SecretKey};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::{
    layout::{read_council, read_key, Dir, Layout},
    supervisor::{Proc, Restart, Spec},
    Config, DevnetError,
};

/// How long `keel l1` may take to write its ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// anvil's chain id in a devnet.
pub const ANVIL_CHAIN_ID: u64 = 31337;
/// Blocks a batch must be under before the devnet's services count it as settled.
pub const CONFIRMATIONS: u64 = 2;

/// Which L1 a devnet runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L1Kind {
    /// `keel l1`: the embedded single-node chain (devnets made before anvil have it).
    #[default]
    Embedded,
    /// anvil (`@foundry-rs/anvil` from npm) with Keel's contracts deployed.
    Anvil,
}

impl std::fmt::Display for L1Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Embedded => "embedded",
            Self::Anvil => "anvil",
        })
    }
}

impl std::str::FromStr for L1Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "embedded" => Ok(Self::Embedded),
            "anvil" => Ok(Self::Anvil),
            other => Err(format!("{other:?} is not an L1: anvil or embedded")),
        }
    }
}

/// Where the rollup was deployed on the devnet's anvil (`deployment.json`).
#[derive(Debug, Serialize, Deserialize)]
struct AnvilDeployment {
    url: String,
    deployment: keel_evm::deploy::Deployment,
    genesis: EvmGenesis,
}

/// A council: its members' key packages (a threshold of them, here) and the public package.
pub(crate) type Council = (
    BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    frost::keys::PublicKeyPackage,
);

/// The running L1.
pub(crate) enum Chain {
    /// `keel l1`, supervised.
    Embedded { proc: Proc, rpc: Arc<RpcL1> },
    /// anvil with the rollup deployed; the funder's client reads for the devnet.
    Anvil {
        // dropped before anvil: its client's runtime stops before the node it polls does
        funder: Arc<EvmSettlement>,
        anvil: Anvil,
        url: String,
        rollup: Address,
        log: std::path::PathBuf,
    },
}

fn evm_signer(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().expect("anvil's dev keys parse")
}

/// Seconds, rounded up, of `ms` milliseconds.
fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl Chain {
    /// Starts the devnet's L1 and returns it with its reads.
    pub(crate) fn start(
        cfg: &Config,
        dir: &Dir,
        layout: &Layout,
        verifier: &Path,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<(Self, Arc<dyn SettlementLayer>), DevnetError> {
        match layout.l1 {
            L1Kind::Embedded => Self::embedded(cfg, dir, verifier, interrupted),
            L1Kind::Anvil => Self::anvil(cfg, dir, layout, verifier),
        }
    }

    fn embedded(
        cfg: &Config,
        dir: &Dir,
        verifier: &Path,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<(Self, Arc<dyn SettlementLayer>), DevnetError> {
        // the L1 keeps its port across restarts: every process was given its URL
        let port = crate::net::free_port()?;
        let mut proc = Proc::spawn(
            &cfg.exe,
            Spec {
                name: "l1".into(),
                args: vec![
                    "l1".into(),
                    "--l1.dir".into(),
                    crate::net::path(&dir.root.join("l1")),
                    "--l1.verifier".into(),
                    crate::net::path(verifier),
                    "--l1.genesis".into(),
                    crate::net::path(&dir.genesis()),
                    "--l1.listen".into(),
                    format!("127.0.0.1:{port}"),
                ],
                log: dir.log("l1"),
                ready: dir.ready("l1"),
                env: vec![],
            },
        )?;
        let url = proc.wait_ready(READY_TIMEOUT, interrupted)?.api;
        let rpc = Arc::new(RpcL1::connect(&url)?);
        Ok((
            Self::Embedded {
                proc,
                rpc: rpc.clone(),
            },
            rpc,
        ))
    }

    fn anvil(
        cfg: &Config,
        dir: &Dir,
        layout: &Layout,
        verifier: &Path,
    ) -> Result<(Self, Arc<dyn SettlementLayer>), DevnetError> {
        // beside the verifier file, the EVM verifier's contracts (the caller's keygen wrote them)
        let evm = evm_verifier_file(verifier);
        let contracts: VerifierContracts = serde_json::from_slice(
            &std::fs::read(&evm).map_err(|source| DevnetError::Io { path: evm, source })?,
        )?;
        let log = dir.log("anvil");
        let anvil = Anvil::start(&AnvilConfig {
            block_time: Some(seconds(cfg.block_time_ms)),
            chain_id: ANVIL_CHAIN_ID,
            accounts: 10,
            log: Some(log.clone()),
        })
        .map_err(|e| DevnetError::Evm(format!("starting anvil: {e}")))?;
        let url = anvil.url();
        // the devnet's council (dealt by a DKG when the directory was made)
        let (_, public) = read_council(dir)?;
        let (council_x, council_y) = council::group_key(&public)
            .map_err(|e| DevnetError::Evm(format!("the council's key: {e}")))?;
        let genesis = EvmGenesis {
            chain_id: layout.chain_id,
            depth: layout.depth,
            failover_timeout_s: seconds(cfg.failover_timeout_ms),
            forced_inclusion_s: seconds(cfg.forced_inclusion_ms),
            proof_s: seconds(cfg.proof_ms),
            sequencers: vec![evm_signer(0).address(), evm_signer(1).address()],
            sequencer_keys: vec![
                read_key(&dir.sequencer_key(0))?.public_key(),
                read_key(&dir.sequencer_key(1))?.public_key(),
            ],
            council_x,
            council_y,
        };
        let deployer = keel_evm::signing_provider(
            url.parse()
                .map_err(|e| DevnetError::Evm(format!("anvil's URL {url}: {e}")))?,
            evm_signer(2),
        );
        let rt = tokio::runtime::Runtime::new().map_err(|source| DevnetError::Io {
            path: dir.root.clone(),
            source,
        })?;
        let deployment = rt
            .block_on(deploy(&deployer, &genesis, &contracts))
            .map_err(|e| DevnetError::Evm(format!("deploying the rollup: {e}")))?;
        drop(rt);
        let record = dir.root.join("deployment.json");
        std::fs::write(
            &record,
            serde_json::to_vec_pretty(&AnvilDeployment {
                url: url.clone(),
                deployment: deployment.clone(),
                genesis,
            })?,
        )
        .map_err(|source| DevnetError::Io {
            path: record,
            source,
        })?;
        for (i, key) in DEV_KEYS.iter().enumerate().take(2) {
            let f = evm_key_file(dir, i);
            std::fs::write(&f, key).map_err(|source| DevnetError::Io { path: f, source })?;
        }
        let funder = Arc::new(
            EvmSettlement::connect(
                &EvmConfig {
                    url: url.clone(),
                    evm_chain_id: ANVIL_CHAIN_ID,
                    rollup: deployment.rollup,
                    chain_id: Some(layout.chain_id),
                    confirmations: CONFIRMATIONS,
                },
                evm_signer(2),
            )
            .map_err(|e| DevnetError::Evm(format!("connecting to the rollup: {e}")))?,
        );
        // reads are settled ones: wait until the deployment is under enough blocks
        let start = std::time::Instant::now();
        while let Err(e) = funder.rollup() {
            if start.elapsed() > READY_TIMEOUT {
                return Err(e.into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok((
            Self::Anvil {
                anvil,
                funder: funder.clone(),
                url,
                rollup: deployment.rollup,
                log,
            },
            funder,
        ))
    }

    /// What it is, for the progress lines.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Embedded { rpc, .. } => format!("keel l1 at {}", rpc.url()),
            Self::Anvil { url, rollup, .. } => format!(
                "anvil at {url} (chain {ANVIL_CHAIN_ID}), rollup {rollup}, {CONFIRMATIONS} confirmations"
            ),
        }
    }

    /// The L1 flags of sequencer `i`: a reader's, and on anvil its EVM key.
    pub(crate) fn node_args(&self, dir: &Dir, i: usize) -> Vec<String> {
        let mut args = self.reader_args();
        if let Self::Anvil { .. } = self {
            args.extend([
                "--evm.key-file".into(),
                crate::net::path(&evm_key_file(dir, i)),
            ]);
        }
        args
    }

    /// The L1 flags of sequencer `i`'s committer (`keel committer`).
    pub(crate) fn committer_args(&self, dir: &Dir, i: usize) -> Vec<String> {
        match self {
            Self::Embedded { rpc, .. } => vec![
                "--l1.rpc".into(),
                rpc.url().into(),
                "--committer.key-file".into(),
                crate::net::path(&dir.sequencer_key(i)),
            ],
            Self::Anvil { .. } => self.node_args(dir, i),
        }
    }

    /// The L1 flags of a service that only reads (`keel prover run`).
    /// The settings file of the citizens' commands (`keel transfer`, `keel deposit`, ...) against
    /// this devnet: both sequencers, the L1, and an L1 account with funds to deposit from (on
    /// anvil, its dev account 3; on the embedded L1, the devnet's funder).
    pub(crate) fn client_settings(
        &self,
        dir: &Dir,
        sequencers: &[String],
    ) -> Result<String, DevnetError> {
        let list = sequencers
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut text = format!(
            "# The citizens' commands against this devnet, e.g.\n\
             #   keel --config {} transfer --key-file me.key --to 1 --amount 5 --wait proven\n\
             [client]\nsequencer = [{list}]\n",
            crate::net::path(&dir.root.join("client.toml"))
        );
        match self {
            Self::Embedded { rpc, .. } => {
                text += &format!(
                    "[l1]\nrpc = {:?}\nkey-file = {:?}\n",
                    rpc.url(),
                    crate::net::path(&dir.funder_key())
                );
            }
            Self::Anvil { url, rollup, .. } => {
                let key = dir.keys().join("citizen.evm-key");
                std::fs::write(&key, DEV_KEYS[3]).map_err(|source| DevnetError::Io {
                    path: key.clone(),
                    source,
                })?;
                text += &format!(
                    "[evm]\nrpc = {url:?}\nrollup = \"{rollup}\"\nchain-id = {ANVIL_CHAIN_ID}\n\
                     confirmations = {CONFIRMATIONS}\nkey-file = {:?}\n",
                    crate::net::path(&key)
                );
            }
        }
        Ok(text)
    }

    pub(crate) fn reader_args(&self) -> Vec<String> {
        match self {
            Self::Embedded { rpc, .. } => vec!["--l1.rpc".into(), rpc.url().into()],
            Self::Anvil { url, rollup, .. } => vec![
                "--evm.rpc".into(),
                url.clone(),
                "--evm.rollup".into(),
                rollup.to_string(),
                "--evm.chain-id".into(),
                ANVIL_CHAIN_ID.to_string(),
                "--evm.confirmations".into(),
                CONFIRMATIONS.to_string(),
            ],
        }
    }

    /// How the L1 names sequencer `i`.
    pub(crate) fn sequencer(&self, dir: &Dir, i: usize) -> Result<L1Address, DevnetError> {
        Ok(match self {
            Self::Embedded { .. } => address_of(&read_key(&dir.sequencer_key(i))?.public_key()),
            Self::Anvil { .. } => L1Address(evm_signer(i).address().0 .0),
        })
    }

    /// The funder's deposit of `amount` for the account of `pk`.
    pub(crate) fn deposit(
        &self,
        dir: &Dir,
        pk: &PublicKey,
        amount: u64,
    ) -> Result<(), DevnetError> {
        match self {
            Self::Embedded { rpc, .. } => {
                Keyed::new(rpc.as_ref(), read_key(&dir.funder_key())?).deposit(pk, amount)?;
            }
            Self::Anvil { funder, .. } => {
                funder.deposit(pk, amount)?;
            }
        }
        Ok(())
    }

    /// The council activates exit mode (a threshold of its members sign its next action).
    pub(crate) fn council_exit_mode(
        &self,
        dir: &Dir,
        layout: &Layout,
        sequence: u64,
    ) -> Result<(), DevnetError> {
        let (members, public) = read_council(dir)?;
        let signers: Vec<frost::Identifier> = members.keys().copied().collect();
        match self {
            Self::Embedded { rpc, .. } => {
                let action = CouncilAction::ActivateExitMode;
                let msg = action.message(layout.chain_id, sequence);
                let signature =
                    keel_committer::council::sign(&members, &public, &signers, &msg, OsRng)?;
                rpc.send(
                    &read_key(&dir.funder_key())?,
                    Call::Council {
                        action,
                        sequence,
                        signature,
                    },
                )?;
            }
            Self::Anvil { funder, rollup, .. } => {
                let msg = council::message(
                    ANVIL_CHAIN_ID,
                    *rollup,
                    layout.chain_id,
                    sequence,
                    Action::ExitMode,
                    [0; 32],
                );
                let sig = keel_committer::council::sign(&members, &public, &signers, &msg, OsRng)?;
                let [rx, ry, z] = council::signature_words(sig.inner())
                    .map_err(|e| DevnetError::Evm(format!("the council's signature: {e}")))?;
                let client = funder.client().clone();
                funder
                    .block_on(async move {
                        let call = client.rollup().councilActivateExitMode(rx, ry, z);
                        keel_evm::transact(call).await.map(|r| r.status())
                    })
                    .map_err(|e| DevnetError::Evm(format!("the council's activation: {e}")))
                    .and_then(|ok| {
                        ok.then_some(()).ok_or_else(|| {
                            DevnetError::Evm("the council's activation reverted".into())
                        })
                    })?;
            }
        }
        Ok(())
    }

    /// Exits the account of `owner` from the replayed state; returns the amount paid (on anvil,
    /// credited to the funder, who pays the gas, and claimed).
    pub(crate) fn exit(
        &self,
        replayed: &Replayed<MemStore>,
        owner: &SecretKey,
    ) -> Result<u64, DevnetError> {
        Ok(match self {
            Self::Embedded { rpc, .. } => {
                let signer = Keyed::new(rpc.as_ref(), owner.clone());
                reconstruct::exit(rpc.as_ref(), &signer, replayed, owner, None)?.amount
            }
            Self::Anvil { funder, .. } => {
                reconstruct::exit(funder.as_ref(), funder.as_ref(), replayed, owner, None)?.amount
            }
        })
    }

    /// After the exits: what the L1 paid out is in its recipients' hands (anvil credits exits to
    /// be claimed: the funder claims them).
    pub(crate) fn collect(&self) -> Result<(), DevnetError> {
        if let Self::Anvil { funder, .. } = self {
            let client = funder.client().clone();
            funder
                .block_on(async move { client.claim().await })
                .map_err(|e| DevnetError::Evm(format!("claiming the exits' payouts: {e}")))?;
        }
        Ok(())
    }

    /// Supervises the L1: `keel l1` is restarted if it died; anvil keeps the chain in memory,
    /// so its end ends the run.
    pub(crate) fn supervise(&mut self) -> Result<Option<Restart>, DevnetError> {
        match self {
            Self::Embedded { proc, .. } => proc.supervise(),
            Self::Anvil { anvil, log, .. } => match anvil.ended() {
                None => Ok(None),
                Some(status) => Err(DevnetError::Child {
                    name: "anvil".into(),
                    ended: status.to_string(),
                    log: log.clone(),
                    cause: crate::supervisor::cause_lines(
                        &std::fs::read_to_string(&*log).unwrap_or_default(),
                        12,
                    ),
                }),
            },
        }
    }

    /// Stops the L1 (anvil's chain ends with it).
    pub(crate) fn stop(&mut self) {
        if let Self::Embedded { proc, .. } = self {
            proc.stop();
        }
    }
}

/// The EVM verifier's contracts beside a verifier file: `….verifier` → `….evm-verifier.json`
/// (the names `keel prover keygen --evm` writes).
pub fn evm_verifier_file(verifier: &Path) -> std::path::PathBuf {
    let name = verifier
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".verifier").unwrap_or(&name);
    verifier.with_file_name(format!("{stem}.evm-verifier.json"))
}

/// Sequencer `i`'s EVM key file (anvil's dev key `i`).
fn evm_key_file(dir: &Dir, i: usize) -> std::path::PathBuf {
    dir.keys().join(format!("sequencer-{i}.evm-key"))
}
