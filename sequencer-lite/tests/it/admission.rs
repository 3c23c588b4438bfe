//! Property: the sequencer accepts exactly the operations the STF applies, in the order it
//! acknowledged them, and its committed state is the STF's.

use keel_sequencer::{Sequencer, SubmitError};
use keel_state::{
    test_utils::{arb_op_spec, funded_state},
    AccountIndex, BatchOp,
};
use proptest::prelude::*;

use crate::common::{config, fund, DEPTH, FUNDS};

const ACCOUNTS: u32 = 4;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn admission_agrees_with_the_stf(specs in prop::collection::vec(arb_op_spec(ACCOUNTS), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let seq = Sequencer::open(config(dir.path())).unwrap();
        fund(&seq, ACCOUNTS);
        let mut reference = funded_state(DEPTH, ACCOUNTS, FUNDS);
        let mut l1_index = u64::from(ACCOUNTS);
        for spec in &specs {
            let op = spec.build(|i| {
                reference
                    .account(AccountIndex(i))
                    .ok()
                    .flatten()
                    .map_or(0, |a| a.nonce)
            });
            let stf = reference.pending().apply(&op);
            match op {
                BatchOp::L2(s) => {
                    let got = seq.submit_blocking(s);
                    match (&stf, &got) {
                        (Ok(_), Ok(_)) => {}
                        (Err(e), Err(SubmitError::Rule(r))) => prop_assert_eq!(e, r),
                        _ => prop_assert!(false, "STF {:?}, sequencer {:?}", stf, got),
                    }
                }
                BatchOp::L1(entry) => {
                    // queue entries are always consumed (applied or rejected), as in the STF
                    prop_assert!(seq.submit_l1_blocking(l1_index, entry).unwrap().is_some());
                    l1_index += 1;
                }
            }
            if stf.is_ok() {
                reference.apply(&op).unwrap();
            }
        }
        for i in 0..=ACCOUNTS {
            prop_assert_eq!(
                seq.account(AccountIndex(i)).unwrap(),
                reference.account(AccountIndex(i)).unwrap()
            );
        }
        // once cut, executed and committed, the sequencer's state is the reference's
        let mut settled = false;
        for _ in 0..400 {
            if seq.status().unwrap().waiting == 0 {
                settled = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        prop_assert!(settled);
        prop_assert_eq!(seq.root().unwrap(), reference.root().unwrap());
        seq.shutdown();
    }
}
