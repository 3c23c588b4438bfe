//! The circuit's input, read off `keel-state`'s [`BatchWitness`] and nothing else.
//!
//! Each operation fills one slot of the fixed-capacity circuit; slots past the batch's length are
//! padding. A slot has two leaf slots: `x` for the operation's first account (the sender, or a
//! deposit's target) and `y` for a transfer's recipient. They take the witness's touched leaves in
//! the order [`keel_state::witness`] documents: `x` when the first index fits the tree, then `y`
//! for a transfer whose recipient fits. A leaf slot the operation does not use holds an empty
//! account, which the circuit does not authenticate.

use keel_state::{
    field::{fr_from_address, split_u256},
    tree, Account, BatchOp, BatchWitness, Deposit, Fr, LeafUpdate, QueueEntry, SignedOp,
};

use super::{CircuitError, Shape};

/// Operation kinds as the signed message numbers them (0 is padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Pad = 0,
    Deposit = 1,
    Transfer = 2,
    Withdraw = 3,
}

/// One leaf as the circuit sees it.
#[derive(Clone, Debug)]
pub(crate) struct LeafInput {
    pub(crate) exists: bool,
    pub(crate) pk: (Fr, Fr),
    pub(crate) balance: u64,
    pub(crate) nonce: u64,
    pub(crate) siblings: Vec<Fr>,
}

impl LeafInput {
    fn unused(depth: u8) -> Self {
        Self {
            exists: false,
            pk: (Fr::zero(), Fr::zero()),
            balance: 0,
            nonce: 0,
            siblings: (0..depth).map(tree::empty_hash).collect(),
        }
    }

    fn from_update(u: &LeafUpdate) -> Self {
        let (exists, pk, balance, nonce) = match u.before {
            Some(Account { pk, balance, nonce }) => (true, pk.xy(), balance, nonce),
            None => (false, (Fr::zero(), Fr::zero()), 0, 0),
        };
        Self {
            exists,
            pk,
            balance,
            nonce,
            siblings: u.siblings.clone(),
        }
    }
}

/// One operation slot.
#[derive(Clone, Debug)]
pub(crate) struct OpInput {
    pub(crate) kind: Kind,
    /// 1 for an L1 queue entry.
    pub(crate) from_queue: bool,
    /// Sender, or a deposit's target.
    pub(crate) a: u64,
    /// A transfer's recipient (0 otherwise).
    pub(crate) b: u64,
    /// A withdrawal's L1 recipient as a field element (0 otherwise).
    pub(crate) recipient: Fr,
    /// A deposit's key (0 otherwise).
    pub(crate) deposit_pk: (Fr, Fr),
    pub(crate) amount: u64,
    /// The signed nonce (0 for deposits).
    pub(crate) nonce: u64,
    /// Signature `R` and `s` halves (0 for deposits).
    pub(crate) r: (Fr, Fr),
    pub(crate) s: (Fr, Fr),
    pub(crate) x: LeafInput,
    pub(crate) y: LeafInput,
}

impl OpInput {
    pub(crate) fn padding(depth: u8) -> Self {
        Self {
            kind: Kind::Pad,
            from_queue: false,
            a: 0,
            b: 0,
            recipient: Fr::zero(),
            deposit_pk: (Fr::zero(), Fr::zero()),
            amount: 0,
            nonce: 0,
            r: (Fr::zero(), Fr::zero()),
            s: (Fr::zero(), Fr::zero()),
            x: LeafInput::unused(depth),
            y: LeafInput::unused(depth),
        }
    }

    fn new(op: &BatchOp, leaves: &[LeafUpdate], depth: u8) -> Result<Self, &'static str> {
        let mut slot = Self::padding(depth);
        let signed = |slot: &mut Self, s: &SignedOp| {
            let sig = s.signature();
            let r = sig.r();
            let c = halo2_base::halo2_proofs::halo2curves::CurveAffine::coordinates(&r)
                .expect("a decoded signature's R is not the identity");
            slot.r = (*c.x(), *c.y());
            slot.s = split_u256(&sig.s_bytes());
            slot.amount = s.amount();
            slot.nonce = s.nonce();
            slot.a = u64::from(s.from().0);
            match s {
                SignedOp::Transfer(t) => {
                    slot.kind = Kind::Transfer;
                    slot.b = u64::from(t.to.0);
                }
                SignedOp::Withdraw(w) => {
                    slot.kind = Kind::Withdraw;
                    slot.recipient = fr_from_address(&w.recipient.0);
                }
            }
        };
        match op {
            BatchOp::L2(s) => signed(&mut slot, s),
            BatchOp::L1(QueueEntry::Forced(s)) => {
                slot.from_queue = true;
                signed(&mut slot, s);
            }
            BatchOp::L1(QueueEntry::Deposit(Deposit { to, pk, amount })) => {
                slot.from_queue = true;
                slot.kind = Kind::Deposit;
                slot.a = u64::from(to.0);
                slot.deposit_pk = pk.xy();
                slot.amount = *amount;
            }
        }
        let fits = |i: u64| depth >= 32 || i >> depth == 0;
        let mut rest = leaves.iter();
        let mut take = |index: u64| -> Result<LeafInput, &'static str> {
            let u = rest
                .next()
                .ok_or("fewer touched leaves than the operation needs")?;
            if u64::from(u.index.0) != index {
                return Err("touched leaf is not the operation's account");
            }
            if u.siblings.len() != usize::from(depth) {
                return Err("path length differs from the depth");
            }
            Ok(LeafInput::from_update(u))
        };
        if fits(slot.a) {
            slot.x = take(slot.a)?;
        }
        if slot.kind == Kind::Transfer && fits(slot.b) {
            slot.y = take(slot.b)?;
        }
        if rest.next().is_some() {
            return Err("more touched leaves than the operation has accounts");
        }
        Ok(slot)
    }
}

/// The public inputs of a batch proof, in instance order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicInputs {
    /// State root before the batch.
    pub prev_root: Fr,
    /// State root after it.
    pub new_root: Fr,
    /// The batch number.
    pub batch_number: u64,
    /// Commitment to the batch's operations.
    pub data_commitment: Fr,
    /// L1 queue hash before.
    pub queue_before: Fr,
    /// L1 queue hash after.
    pub queue_after: Fr,
}

impl PublicInputs {
    /// Number of public inputs.
    pub const LEN: usize = 6;

    /// The public inputs the batch header claims.
    pub fn of(batch: &keel_state::Batch) -> Self {
        Self {
            prev_root: batch.prev_root,
            new_root: batch.new_root,
            batch_number: batch.number.0,
            data_commitment: batch.data_commitment(),
            queue_before: batch.queue_before,
            queue_after: batch.queue_after,
        }
    }

    /// As the instance column holds them.
    pub fn to_vec(&self) -> Vec<Fr> {
        vec![
            self.prev_root,
            self.new_root,
            Fr::from(self.batch_number),
            self.data_commitment,
            self.queue_before,
            self.queue_after,
        ]
    }
}

/// Everything the circuit is synthesised from.
#[derive(Clone, Debug)]
pub(crate) struct CircuitInput {
    pub(crate) public: PublicInputs,
    pub(crate) ops: Vec<OpInput>,
}

impl CircuitInput {
    /// Reads a witness into `shape`'s slots, padding to capacity.
    pub(crate) fn from_witness(shape: &Shape, w: &BatchWitness) -> Result<Self, CircuitError> {
        if w.depth != shape.depth {
            return Err(CircuitError::Depth {
                circuit: shape.depth,
                witness: w.depth,
            });
        }
        if w.ops.len() > shape.capacity {
            return Err(CircuitError::Capacity {
                capacity: shape.capacity,
                ops: w.ops.len(),
            });
        }
        let mut ops = Vec::with_capacity(shape.capacity);
        for (i, ow) in w.ops.iter().enumerate() {
            let slot = OpInput::new(&ow.op, &ow.leaves, w.depth)
                .map_err(|what| CircuitError::Witness { op: i, what })?;
            ops.push(slot);
        }
        ops.resize_with(shape.capacity, || OpInput::padding(shape.depth));
        Ok(Self {
            public: PublicInputs::of(&w.batch),
            ops,
        })
    }

    /// An all-padding input (for key generation): the empty tree, no operations.
    pub(crate) fn blank(shape: &Shape) -> Self {
        let root = tree::empty_hash(shape.depth);
        Self {
            public: PublicInputs {
                prev_root: root,
                new_root: root,
                batch_number: 1,
                data_commitment: keel_state::data_commitment(&[]),
                queue_before: Fr::zero(),
                queue_after: Fr::zero(),
            },
            ops: vec![OpInput::padding(shape.depth); shape.capacity],
        }
    }
}
