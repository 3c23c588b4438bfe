//! Errors: why a submission was refused (each a typed reason with an HTTP status), and why the
//! sequencer could not start or had to stop.

use keel_state::{BatchError, OpenError, StfError, StoreError};

keel_http::reasons! {
    /// Every reason the sequencer's API gives for a refusal: the `error` of its JSON body, for
    /// the server that writes it and the [`crate::Client`] that reads it.
    pub enum Reason {
        /// The body is not the expected JSON.
        BadRequest = "bad_request",
        /// The body is over the limit.
        TooLarge = "too_large",
        /// The operation is not hex.
        BadHex = "bad_hex",
        /// The bytes are not a canonical signed operation.
        BadEncoding = "bad_encoding",
        /// An account index outside the tree.
        IndexOutOfRange = "index_out_of_range",
        /// No such account.
        UnknownAccount = "unknown_account",
        /// The signature does not verify (an operation's, or a standby's acknowledgement's).
        BadSignature = "bad_signature",
        /// A nonce already used.
        StaleNonce = "stale_nonce",
        /// A nonce ahead of the account's.
        NonceGap = "nonce_gap",
        /// The balance does not cover it.
        InsufficientBalance = "insufficient_balance",
        /// A balance would overflow.
        Overflow = "overflow",
        /// The key does not match the account's.
        KeyMismatch = "key_mismatch",
        /// The sequencer's storage failed.
        Store = "store",
        /// The account has its limit of operations waiting.
        AccountLimit = "account_limit",
        /// The mempool is full.
        MempoolFull = "mempool_full",
        /// An L1 queue entry out of order.
        QueueOrder = "queue_order",
        /// Accepted, but the level waited for was not reached in time.
        WaitTimeout = "wait_timeout",
        /// The sequencer stopped accepting.
        Halted = "halted",
        /// A standby: submit to the primary.
        NotPrimary = "not_primary",
        /// No operation with that sequence number.
        UnknownOp = "unknown_op",
        /// No batch with that number.
        UnknownBatch = "unknown_batch",
        /// An acknowledgement from a key that is not a registered standby.
        UnknownStandby = "unknown_standby",
        /// An acknowledgement for another epoch.
        StaleEpoch = "stale_epoch",
        /// An acknowledgement for another root than the batch's.
        RootMismatch = "root_mismatch",
    }
}

/// Why the log failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// RocksDB failed.
    #[error("write-ahead log: {0}")]
    Backend(#[source] rocksdb::Error),
    /// A record is not what the sequencer wrote.
    #[error("corrupt {0} in the write-ahead log")]
    Corrupt(&'static str),
}

impl WalError {
    pub(crate) fn backend(e: rocksdb::Error) -> Self {
        Self::Backend(e)
    }
}

/// Why the sequencer could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SequencerError {
    /// The log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The state could not be opened.
    #[error("state: {0}")]
    Open(#[from] OpenError),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// A batch could not be executed or committed.
    #[error("batch: {0}")]
    Batch(#[from] BatchError),
    /// The log and the state disagree.
    #[error("recovery: {0}\nHelp: the data directory was changed outside the sequencer; restore it from a backup or rebuild the state from L1 data")]
    Recovery(String),
    /// An I/O error (the data directory, the listener).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The sequencer was shut down: it takes no new subscribers.
    #[error("the sequencer is shut down")]
    ShutDown,
}

/// Why a submission was refused. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The body is not the expected JSON.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// The body is larger than the limit.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The operation is not valid hex.
    #[error("operation is not hex: {0}")]
    BadHex(String),
    /// The bytes are not a signed operation's canonical encoding.
    #[error("operation does not decode: {0}")]
    BadEncoding(String),
    /// The operation breaks a rule (the STF's reason).
    #[error("{0}")]
    Rule(StfError),
    /// The account already has its limit of operations waiting for a batch.
    #[error(
        "account {account} already has {limit} operations waiting; retry after the next batch"
    )]
    AccountLimit {
        /// The account.
        account: u32,
        /// The limit.
        limit: usize,
    },
    /// The mempool is full.
    #[error("{limit} operations are waiting; retry later")]
    MempoolFull {
        /// The limit.
        limit: usize,
    },
    /// An L1 queue entry out of order.
    #[error("L1 queue entry {got}, expected {expected}")]
    QueueOrder {
        /// The next index.
        expected: u64,
        /// The index given.
        got: u64,
    },
    /// The requested durability level was not reached in time (the operation *was* accepted).
    #[error("operation {seq} accepted but not {level} within the timeout")]
    WaitTimeout {
        /// The operation.
        seq: u64,
        /// The level waited for.
        level: &'static str,
    },
    /// The sequencer has stopped accepting (a storage failure, or shutdown).
    #[error("sequencer halted: {0}")]
    Halted(String),
    /// This sequencer is a standby: submit to the primary (a client with an endpoint list moves
    /// on to the next one).
    #[error("this sequencer is a standby (following {0}); submit to the primary")]
    NotPrimary(String),
}

impl SubmitError {
    /// The stable reason code clients match on.
    pub fn reason(&self) -> Reason {
        match self {
            Self::BadRequest(_) => Reason::BadRequest,
            Self::TooLarge { .. } => Reason::TooLarge,
            Self::BadHex(_) => Reason::BadHex,
            Self::BadEncoding(_) => Reason::BadEncoding,
            Self::Rule(e) => match e {
                StfError::Malformed(_) => Reason::BadEncoding,
                StfError::IndexOutOfRange { .. } => Reason::IndexOutOfRange,
                StfError::UnknownAccount(_) => Reason::UnknownAccount,
                StfError::BadSignature { .. } => Reason::BadSignature,
                StfError::BadNonce { expected, got, .. } if got < expected => Reason::StaleNonce,
                StfError::BadNonce { .. } => Reason::NonceGap,
                StfError::InsufficientBalance { .. } => Reason::InsufficientBalance,
                StfError::Overflow(_) => Reason::Overflow,
                StfError::KeyMismatch(_) => Reason::KeyMismatch,
                StfError::Store(_) => Reason::Store,
            },
            Self::AccountLimit { .. } => Reason::AccountLimit,
            Self::MempoolFull { .. } => Reason::MempoolFull,
            Self::QueueOrder { .. } => Reason::QueueOrder,
            Self::WaitTimeout { .. } => Reason::WaitTimeout,
            Self::Halted(_) => Reason::Halted,
            Self::NotPrimary(_) => Reason::NotPrimary,
        }
    }

    /// The HTTP status: 4xx for the client's fault, 503/504 for the sequencer's state.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::BadHex(_) | Self::BadEncoding(_) => 400,
            Self::TooLarge { .. } => 413,
            Self::Rule(StfError::Store(_)) => 503,
            Self::Rule(StfError::BadNonce { expected, got, .. }) if got < expected => 409,
            Self::Rule(_) | Self::QueueOrder { .. } => 422,
            Self::AccountLimit { .. } => 429,
            Self::MempoolFull { .. } | Self::Halted(_) | Self::NotPrimary(_) => 503,
            Self::WaitTimeout { .. } => 504,
        }
    }
}
