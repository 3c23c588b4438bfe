//! Conservation on the embedded L1, the property keel-evm checks against the contracts: random
//! sequences of deposits, proven batches (real proofs, one operation each at the test shape),
//! exit mode, exits and reclaims. After every step the L1 holds in escrow exactly the proven L2
//! supply plus the deposits no batch consumed yet (the escrow is what the genesis allocated less
//! what every address holds), and at the end everything is paid out.

use keel_committer::{Call, EmbeddedChain};
use keel_state::{
    test_utils::{deposit_entry, key, transfer, withdraw},
    AccountIndex, BatchOp, Epoch, L1Address, MemStore, State,
};

use crate::fixture::*;

const ACCOUNTS: u32 = 3;
const ALLOCATED: u64 = 1_000_000;
const EXIT_TO: L1Address = L1Address([9; 20]);
const WITHDRAW_TO: L1Address = L1Address([7; 20]);

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the genesis allocated less what the funder and the payees hold: the escrow.
fn escrow(l1: &dyn EmbeddedChain) -> u64 {
    let funder = keel_committer::address_of(&funder().public_key());
    let held: u64 = [funder, EXIT_TO, WITHDRAW_TO]
        .iter()
        .map(|a| l1.balance(a).unwrap())
        .sum();
    ALLOCATED - held
}

fn check(l1: &dyn EmbeddedChain, state: &State<MemStore>, pending: &[(u64, u32, u64)]) {
    let supply: u64 = (0..ACCOUNTS)
        .filter_map(|i| state.account(AccountIndex(i)).unwrap())
        .map(|a| a.balance)
        .sum();
    let queued: u64 = pending.iter().map(|(_, _, a)| a).sum();
    assert_eq!(
        escrow(l1),
        supply + queued,
        "escrow = proven supply + unconsumed deposits"
    );
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let l1 = open(dir.path());
    let mut rng = Rng(seed);
    let mut state = State::open(MemStore::new(), SHAPE.depth).unwrap();
    let mut pending: Vec<(u64, u32, u64)> = Vec::new();
    let mut position = 0u64;
    let mut nonces = [0u64; ACCOUNTS as usize];
    let mut deposit = |l1: &dyn EmbeddedChain, pending: &mut Vec<_>, i: u32, amount: u64| {
        let pk = key(i).public_key();
        send(l1, &funder(), Call::Deposit { pk, amount }).unwrap();
        pending.push((position, i, amount));
        position += 1;
    };
    // first deposits in index order (the L1 gives key i index i), then random steps
    for i in 0..ACCOUNTS {
        deposit(&l1, &mut pending, i, 1 + rng.below(300));
    }
    check(&l1, &state, &pending);
    for _ in 0..6 + rng.below(4) {
        let op = match rng.below(3) {
            0 => {
                let i = rng.below(u64::from(ACCOUNTS)) as u32;
                deposit(&l1, &mut pending, i, 1 + rng.below(300));
                None
            }
            _ if !pending.is_empty() => {
                let (_, i, amount) = pending.remove(0);
                Some(BatchOp::L1(deposit_entry(i, amount)))
            }
            _ => {
                let from = rng.below(u64::from(ACCOUNTS)) as u32;
                let a = state
                    .account(AccountIndex(from))
                    .unwrap()
                    .expect("deposited");
                if a.balance == 0 {
                    continue;
                }
                let amount = 1 + rng.below(a.balance);
                let nonce = nonces[from as usize];
                nonces[from as usize] += 1;
                Some(if rng.below(2) == 0 {
                    transfer(from, (from + 1) % ACCOUNTS, amount, nonce)
                } else {
                    withdraw(from, amount, nonce)
                })
            }
        };
        if let Some(op) = op {
            let w = state.execute_batch(Epoch(1), vec![op]).unwrap();
            let (proof, _) = prover().prove(&w, |_| {}).unwrap();
            let call = Call::SubmitBatch {
                data: keel_state::Encode::encode(&w.batch),
                proof: proof.proof,
            };
            send(&l1, &primary(), call).unwrap();
        }
        check(&l1, &state, &pending);
    }

    // a deposit no batch consumes; past the forced-inclusion deadline, exit mode
    deposit(&l1, &mut pending, 0, 77);
    wait(
        &l1,
        DEADLINES.forced_inclusion + std::time::Duration::from_secs(1),
    );
    send(&l1, &funder(), Call::ActivateExitMode).unwrap();
    for i in 0..ACCOUNTS {
        let account = state.account(AccountIndex(i)).unwrap().expect("deposited");
        let proof = state.proof(AccountIndex(i)).unwrap();
        let call = Call::Exit {
            account,
            proof,
            recipient: EXIT_TO,
        };
        send(&l1, &key(i), call).unwrap();
    }
    for (position, _, _) in std::mem::take(&mut pending) {
        send(&l1, &funder(), Call::Reclaim { position }).unwrap();
    }
    assert_eq!(
        escrow(&l1),
        0,
        "everything escrowed was paid out, nothing more"
    );
}

#[test]
fn random_sequences_conserve_the_escrow() {
    for seed in [0x5eed_0001u64, 0x5eed_0002] {
        run(seed);
    }
}
