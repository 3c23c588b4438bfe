//! A wallet: one account's key on a [`Client`], which signs its operations with the account's
//! next nonce, submits them, and follows them to a durability level across a failover. What
//! `keel transfer`, `keel withdraw` and the devnet's load generator use.

use std::time::Duration;

use keel_state::{AccountIndex, L1Address, SecretKey, SignedOp, Transfer, Withdraw};

use crate::{
    client::{Client, ClientError},
    follow::{Event, FollowError, Followed},
    sequencer::{Level, OpStatus},
};

/// One account's key, its index, and the next nonce it is known to have.
#[derive(Debug)]
pub struct Wallet {
    client: Client,
    key: SecretKey,
    account: AccountIndex,
    nonce: Option<u64>,
}

/// Why a wallet could not act for its account.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The sequencer's account at this index has another key.
    #[error("account {account} has another key ({pk}): this key cannot sign for it")]
    KeyMismatch {
        /// The account.
        account: u32,
        /// The key the account has, hex.
        pk: String,
    },
    /// The sequencer could not be asked, or refused.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl Wallet {
    /// A wallet for `account`, whose key is `key`, through `client`.
    pub fn new(client: Client, key: SecretKey, account: AccountIndex) -> Self {
        Self {
            client,
            key,
            account,
            nonce: None,
        }
    }

    /// The account.
    pub fn account(&self) -> AccountIndex {
        self.account
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Signs the next operations from `nonce` on, instead of the one the primary admits.
    pub fn set_nonce(&mut self, nonce: u64) {
        self.nonce = Some(nonce);
    }

    /// The nonce the next operation is signed with: the one known, else the primary's (which
    /// also checks that the key is the account's).
    pub async fn nonce(&mut self) -> Result<u64, WalletError> {
        if let Some(n) = self.nonce {
            return Ok(n);
        }
        let view = self.client.account(self.account.0).await?;
        let pk = hex::encode(self.key.public_key().to_bytes());
        if view.pk != pk {
            return Err(WalletError::KeyMismatch {
                account: self.account.0,
                pk: view.pk,
            });
        }
        self.nonce = Some(view.nonce);
        Ok(view.nonce)
    }

    /// A transfer of `amount` to `to`, signed with the next nonce.
    pub async fn transfer(
        &mut self,
        to: AccountIndex,
        amount: u64,
    ) -> Result<SignedOp, WalletError> {
        let nonce = self.nonce().await?;
        Ok(SignedOp::Transfer(Transfer::sign(
            &self.key,
            self.account,
            to,
            amount,
            nonce,
        )))
    }

    /// A withdrawal of `amount` to `recipient` on the L1, signed with the next nonce.
    pub async fn withdraw(
        &mut self,
        recipient: L1Address,
        amount: u64,
    ) -> Result<SignedOp, WalletError> {
        let nonce = self.nonce().await?;
        Ok(SignedOp::Withdraw(Withdraw::sign(
            &self.key,
            self.account,
            recipient,
            amount,
            nonce,
        )))
    }

    /// Submits `op` (signed by this wallet); returns once it is accepted. The nonce moves on
    /// when it is; on any failure it is read again before the next operation (the outcome of a
    /// lost answer is unknown, and a failover loses what was accepted but not replicated).
    pub async fn submit(&mut self, op: &SignedOp) -> Result<OpStatus, ClientError> {
        let r = self.client.submit(op).await;
        self.settle(op, r.is_ok());
        r
    }

    /// Submits `op` and follows it to `level` ([`Client::follow`]).
    pub async fn send(
        &mut self,
        op: &SignedOp,
        level: Level,
        timeout: Duration,
        on_event: impl FnMut(&Event),
    ) -> Result<Followed, FollowError> {
        let r = self.client.follow(op, level, timeout, on_event).await;
        // a timeout still leaves the operation accepted: its nonce is used
        let used = matches!(&r, Ok(_) | Err(FollowError::Timeout { .. }));
        self.settle(op, used);
        r
    }

    fn settle(&mut self, op: &SignedOp, used: bool) {
        self.nonce = used.then(|| op.nonce() + 1);
    }
}
