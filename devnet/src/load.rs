//! The load generator: signed transfers round robin between the demo accounts, each account a
//! [`Wallet`] on one client that knows every sequencer and fails over between them.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use keel_sequencer::{Client, ClientError, Wallet};
use keel_state::{AccountIndex, SecretKey};

const TICK: Duration = Duration::from_millis(250);

/// What the load generator reports.
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Transfers accepted.
    pub accepted: AtomicU64,
    /// Transfers refused (a typed refusal, not a lost answer).
    pub refused: AtomicU64,
    /// The first operation accepted by an endpoint other than `avoid` (a killed primary's),
    /// once `avoid` is set: the failover's end as a client sees it.
    first_elsewhere: Mutex<Option<Instant>>,
    avoid: Mutex<Option<String>>,
}

impl LoadStats {
    /// From now on, note the first operation an endpoint other than `url` accepts.
    pub fn avoid(&self, url: &str) {
        *self.avoid.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.to_owned());
    }

    /// When an endpoint other than the avoided one first accepted an operation.
    pub fn accepted_elsewhere(&self) -> Option<Instant> {
        *self
            .first_elsewhere
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn note_accepted(&self, base: &str) {
        self.accepted.fetch_add(1, Ordering::AcqRel);
        let avoid = self.avoid.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(url) = avoid {
            let mut first = self
                .first_elsewhere
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if first.is_none() && base != url {
                *first = Some(Instant::now());
            }
        }
    }
}

/// A demo account: its key, its index, and the next nonce it is known to have.
#[derive(Debug)]
pub struct Account {
    /// Its key.
    pub key: SecretKey,
    /// Its index in the tree.
    pub index: AccountIndex,
    /// Its next nonce, when known.
    pub nonce: Option<u64>,
}

/// The load's switches.
#[derive(Clone, Debug, Default)]
pub struct Switches {
    /// Send while set.
    pub go: Arc<AtomicBool>,
    /// End once set.
    pub stop: Arc<AtomicBool>,
}

/// Sends transfers round robin (account i pays 1 to account i+1) at most `rate` per second,
/// while `go` is set and until `stop`.
pub fn run(
    endpoints: Vec<String>,
    accounts: Vec<Account>,
    rate: u32,
    switches: Switches,
    stats: Arc<LoadStats>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Client::with_endpoints(endpoints);
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let n = accounts.len();
    let to: Vec<AccountIndex> = accounts.iter().map(|a| a.index).collect();
    let mut wallets: Vec<Wallet> = accounts
        .into_iter()
        .map(|a| {
            let mut w = Wallet::new(client.clone(), a.key, a.index);
            if let Some(nonce) = a.nonce {
                w.set_nonce(nonce);
            }
            w
        })
        .collect();
    let mut i = 0;
    let mut next = Instant::now();
    while !switches.stop.load(Ordering::Acquire) && n > 0 {
        if !switches.go.load(Ordering::Acquire) {
            thread::sleep(TICK);
            next = Instant::now();
            continue;
        }
        let now = Instant::now();
        if now < next {
            thread::sleep(next - now);
        }
        next += every;
        let w = &mut wallets[i];
        let op = match rt.block_on(w.transfer(to[(i + 1) % n], 1)) {
            Ok(op) => op,
            Err(e) => {
                tracing::debug!("reading account {}: {e}", w.account());
                thread::sleep(TICK);
                continue;
            }
        };
        // the wallet reads the nonce again after a failure: the outcome is unknown (a lost
        // answer) or the nonce moved (a failover loses what was accepted but not replicated)
        match rt.block_on(w.submit(&op)) {
            Ok(_) => {
                stats.note_accepted(client.base());
                i = (i + 1) % n;
            }
            Err(e) => {
                if let ClientError::Refused { .. } = e {
                    stats.refused.fetch_add(1, Ordering::AcqRel);
                }
                tracing::debug!("a transfer from account {}: {e}", w.account());
                thread::sleep(TICK);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failover_mark_is_the_first_acceptance_elsewhere() {
        let s = LoadStats::default();
        s.note_accepted("http://a");
        assert_eq!(s.accepted_elsewhere(), None, "nothing avoided yet");
        s.avoid("http://a");
        s.note_accepted("http://a");
        assert_eq!(s.accepted_elsewhere(), None);
        s.note_accepted("http://b");
        let first = s.accepted_elsewhere().unwrap();
        s.note_accepted("http://b");
        assert_eq!(s.accepted_elsewhere(), Some(first));
        assert_eq!(s.accepted.load(Ordering::Acquire), 4);
    }
}
