//! The account rules of the state-transition function, without the tree.
//!
//! What an operation does to the accounts it touches, computed from the accounts it reads. The
//! STF ([`crate::Pending::apply`]) turns these writes into tree updates and witnesses; the
//! sequencer's admission path calls the same functions against its own view of the accounts, so
//! an operation it acknowledges is one the STF will apply. One definition, two callers.
//!
//! The rules and their order are listed in [`crate::stf`].

use crate::{
    account::Account,
    ids::AccountIndex,
    ops::{Deposit, SignedOp},
    signature::PublicKey,
    stf::StfError,
    tree,
};

/// One account write: the account at `index` goes from `before` to `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    /// The account index.
    pub index: AccountIndex,
    /// What was there (`None`: no account).
    pub before: Option<Account>,
    /// What is written.
    pub after: Account,
}

/// How the signature of a signed operation is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigCheck<'a> {
    /// Verify it here.
    Verify,
    /// The caller already verified it under this key. It is accepted only if the key is the
    /// sender's; otherwise it is verified here. (Keys never change once an account exists, so a
    /// caller may verify outside its lock and pass the key it used.)
    VerifiedWith(&'a PublicKey),
}

/// Reads an account by index; `Err` only for a storage failure.
pub trait Accounts {
    /// The account at `index`, `None` if there is none.
    fn get(&self, index: AccountIndex) -> Result<Option<Account>, StfError>;
}

impl<F> Accounts for F
where
    F: Fn(AccountIndex) -> Result<Option<Account>, StfError>,
{
    fn get(&self, index: AccountIndex) -> Result<Option<Account>, StfError> {
        self(index)
    }
}

/// Fails with [`StfError::IndexOutOfRange`] if `index` is outside a tree of `depth`.
pub fn check_index(index: AccountIndex, depth: u8) -> Result<(), StfError> {
    if tree::index_fits(index, depth) {
        Ok(())
    } else {
        Err(StfError::IndexOutOfRange { index, depth })
    }
}

fn existing(accounts: &impl Accounts, index: AccountIndex) -> Result<Account, StfError> {
    accounts.get(index)?.ok_or(StfError::UnknownAccount(index))
}

/// A transfer or withdrawal: the sender's write, then the recipient's (for a self-transfer the
/// second write starts from the first one's result). Nothing is written on error.
pub fn signed(
    op: &SignedOp,
    depth: u8,
    accounts: &impl Accounts,
    sig: SigCheck<'_>,
) -> Result<Vec<Write>, StfError> {
    let from = op.from();
    check_index(from, depth)?;
    if let SignedOp::Transfer(t) = op {
        check_index(t.to, depth)?;
    }
    let sender = existing(accounts, from)?;
    let verified = matches!(sig, SigCheck::VerifiedWith(pk) if *pk == sender.pk);
    if !verified {
        op.verify(&sender.pk)
            .map_err(|source| StfError::BadSignature {
                account: from,
                source,
            })?;
    }
    if op.nonce() != sender.nonce {
        return Err(StfError::BadNonce {
            account: from,
            expected: sender.nonce,
            got: op.nonce(),
        });
    }
    let nonce = sender
        .nonce
        .checked_add(1)
        .ok_or(StfError::Overflow(from))?;
    let amount = op.amount();
    let recipient = match op {
        SignedOp::Transfer(t) => Some((t.to, existing(accounts, t.to)?)),
        SignedOp::Withdraw(_) => None,
    };
    let balance = sender
        .balance
        .checked_sub(amount)
        .ok_or(StfError::InsufficientBalance {
            account: from,
            balance: sender.balance,
            amount,
        })?;
    if let Some((to, r)) = recipient {
        // a self-transfer is debited first, so it cannot overflow
        if to != from && r.balance.checked_add(amount).is_none() {
            return Err(StfError::Overflow(to));
        }
    }
    let debited = Account {
        balance,
        nonce,
        ..sender
    };
    let mut writes = vec![Write {
        index: from,
        before: Some(sender),
        after: debited,
    }];
    if let Some((to, r)) = recipient {
        // a self-transfer credits the account just debited
        let r = if to == from { debited } else { r };
        writes.push(Write {
            index: to,
            before: Some(r),
            after: Account {
                balance: r.balance + amount,
                ..r
            },
        });
    }
    Ok(writes)
}

/// A deposit: creates the account, or tops up one with the same key.
pub fn deposit(d: &Deposit, depth: u8, accounts: &impl Accounts) -> Result<Write, StfError> {
    check_index(d.to, depth)?;
    let before = accounts.get(d.to)?;
    let after = match before {
        None => Account {
            pk: d.pk,
            balance: d.amount,
            nonce: 0,
        },
        Some(a) if a.pk != d.pk => return Err(StfError::KeyMismatch(d.to)),
        Some(a) => {
            let balance = a
                .balance
                .checked_add(d.amount)
                .ok_or(StfError::Overflow(d.to))?;
            Account { balance, ..a }
        }
    };
    Ok(Write {
        index: d.to,
        before,
        after,
    })
}
