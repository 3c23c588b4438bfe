//! The council: a 6-of-8 FROST(secp256k1) key that may rotate the sequencers or activate exit
//! mode, and nothing else.

use keel_committer::{
    address_of, council, Call, CouncilAction, Event, ExitReason, Rejection, Sequencer,
    SettlementLayer,
};
use keel_state::{
    test_utils::{deposit_entry, key},
    AccountIndex, BatchOp, Epoch, Fr, MemStore, SecretKey, State,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
use tempfile::TempDir;

use crate::fixture::*;

fn action(l1: &keel_committer::EmbeddedL1, act: CouncilAction, sequence: u64, ids: &[u16]) -> Call {
    let msg = act.message(l1.chain_id(), sequence);
    Call::Council {
        action: act,
        sequence,
        signature: council_sign(council(), ids, &msg),
    }
}

fn installed() -> SecretKey {
    SecretKey::from_seed(&[0xC0; 32])
}

#[test]
fn a_council_action_with_t_minus_one_signatures_is_refused() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    let act = CouncilAction::ActivateExitMode;
    let msg = act.message(CHAIN, 0);
    // five members: FROST's rounds refuse to aggregate below the threshold...
    let five: Vec<_> = (1..=5)
        .map(|i| council::frost::Identifier::try_from(i).unwrap())
        .collect();
    let (keys, public) = council();
    assert!(council::sign(keys, public, &five, &msg, rand_core::OsRng).is_err());
    // ... and a 5-of-8 council of five of them, dealt apart, is not the council
    let other = council::dkg(8, 5, ChaCha20Rng::seed_from_u64(5)).unwrap();
    let call = Call::Council {
        action: act.clone(),
        sequence: 0,
        signature: council_sign(&other, &[1, 2, 3, 4, 5], &msg),
    };
    assert_eq!(
        refusal(send(&l1, &funder(), call)),
        Rejection::BadCouncilSignature
    );
    // the council's signature over another action
    let call = Call::Council {
        action: act.clone(),
        sequence: 0,
        signature: council_sign(
            council(),
            &[1, 2, 3, 4, 5, 6],
            &CouncilAction::RotateSequencers(vec![key(1).public_key()]).message(CHAIN, 0),
        ),
    };
    assert_eq!(
        refusal(send(&l1, &funder(), call)),
        Rejection::BadCouncilSignature
    );
    assert_eq!(l1.rollup().unwrap().exit_mode, None);
    // six members suffice
    let r = send(&l1, &funder(), action(&l1, act, 0, &[2, 3, 5, 6, 7, 8])).unwrap();
    assert_eq!(r.events, [Event::ExitModeActivated(ExitReason::Council)]);
}

#[test]
fn a_replayed_or_out_of_order_council_message_is_refused() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    let set = vec![primary().public_key(), installed().public_key()];
    let call = action(
        &l1,
        CouncilAction::RotateSequencers(set.clone()),
        0,
        &[1, 2, 3, 4, 5, 6],
    );
    let r = send(&l1, &funder(), call.clone()).unwrap();
    assert_eq!(r.events, [Event::SequencersRotated { count: 2 }]);
    assert_eq!(
        l1.rollup().unwrap().sequencers,
        set.iter()
            .copied()
            .map(Sequencer::keyed)
            .collect::<Vec<_>>()
    );
    // the same council message relayed again, by anyone
    for relayer in [funder(), key(5)] {
        assert_eq!(
            refusal(send(&l1, &relayer, call.clone())),
            Rejection::CouncilReplay {
                expected: 1,
                got: 0
            }
        );
    }
    // a message numbered ahead
    let ahead = action(&l1, CouncilAction::ActivateExitMode, 2, &[1, 2, 3, 4, 5, 6]);
    assert_eq!(
        refusal(send(&l1, &funder(), ahead)),
        Rejection::CouncilReplay {
            expected: 1,
            got: 2
        }
    );
    // a signature for sequence 0 presented as sequence 1
    if let Call::Council {
        action, signature, ..
    } = call
    {
        let moved = Call::Council {
            action,
            sequence: 1,
            signature,
        };
        assert_eq!(
            refusal(send(&l1, &funder(), moved)),
            Rejection::BadCouncilSignature
        );
    }
    let empty = action(
        &l1,
        CouncilAction::RotateSequencers(vec![]),
        1,
        &[1, 2, 3, 4, 5, 6],
    );
    assert_eq!(
        refusal(send(&l1, &funder(), empty)),
        Rejection::EmptySequencerSet
    );
    assert_eq!(l1.rollup().unwrap().council_sequence, 1);
}

#[test]
fn the_council_cannot_change_a_root_or_move_a_balance() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    queue_deposits(&l1);
    let all = [1, 2, 3, 4, 5, 6, 7, 8];
    // the council installs its own sequencer: the lease moves to it in a new epoch
    let call = action(
        &l1,
        CouncilAction::RotateSequencers(vec![installed().public_key()]),
        0,
        &all,
    );
    let r = send(&l1, &funder(), call).unwrap();
    assert!(r.events.contains(&Event::LeaseClaimed {
        epoch: Epoch(2),
        sequencer: address_of(&installed().public_key())
    }));
    assert_eq!(
        refusal(send(&l1, &primary(), submit(1))),
        Rejection::StaleEpoch {
            current: Epoch(2),
            got: Epoch(1)
        }
    );
    // its sequencer cannot settle a root the proof does not prove
    let forged = submit_edited(1, |b| {
        b.epoch = Epoch(2);
        b.new_root += Fr::one();
    });
    assert!(matches!(
        refusal(send(&l1, &installed(), forged)),
        Rejection::InvalidProof(_)
    ));
    // the council has no L1 account: it cannot post a batch or move funds, only sign actions
    let batch = submit_edited(1, |b| b.epoch = Epoch(2));
    // the installed sequencer settles the true batch, proven, in its epoch
    send(&l1, &installed(), batch).unwrap();
    assert_eq!(
        l1.rollup().unwrap().checkpoint.root,
        fixture().batches[0].batch.new_root
    );
    // in exit mode, the council cannot exit an account it does not own
    let call = action(&l1, CouncilAction::ActivateExitMode, 1, &all);
    send(&l1, &funder(), call).unwrap();
    let mut l2 = State::open(MemStore::new(), SHAPE.depth).unwrap();
    l2.apply(&BatchOp::L1(deposit_entry(0, DEPOSITS[0])))
        .unwrap();
    assert_eq!(l2.root().unwrap(), l1.rollup().unwrap().checkpoint.root);
    // an exit is its owner's alone
    let exit = Call::Exit {
        account: l2.account(AccountIndex(0)).unwrap().unwrap(),
        proof: l2.proof(AccountIndex(0)).unwrap(),
        recipient: address_of(&funder().public_key()),
    };
    assert_eq!(
        refusal(send(&l1, &funder(), exit)),
        Rejection::NotAccountOwner
    );
}
