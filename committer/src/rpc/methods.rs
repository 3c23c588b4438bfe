//! The JSON-RPC methods and their parameters: one definition for the server that dispatches on
//! them and the [`RpcL1`](super::RpcL1) client that calls them.

use keel_state::{AccountIndex, BatchNumber, L1Address, PublicKey};
use serde::{Deserialize, Serialize};

/// A method of the L1's JSON-RPC API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `keel_chainId`: no params.
    ChainId,
    /// `keel_head`: no params.
    Head,
    /// `keel_rollup`: no params.
    Rollup,
    /// `keel_nonce`: [`AddressParams`].
    Nonce,
    /// `keel_balance`: [`AddressParams`].
    Balance,
    /// `keel_submit`: [`SubmitParams`].
    Submit,
    /// `keel_queue`: [`QueueParams`].
    Queue,
    /// `keel_batch`: [`BatchParams`].
    Batch,
    /// `keel_accountIndex`: [`KeyParams`].
    AccountIndex,
    /// `keel_exited`: [`AccountParams`].
    Exited,
}

impl Method {
    /// Every method.
    pub const ALL: &'static [Method] = &[
        Method::ChainId,
        Method::Head,
        Method::Rollup,
        Method::Nonce,
        Method::Balance,
        Method::Submit,
        Method::Queue,
        Method::Batch,
        Method::AccountIndex,
        Method::Exited,
    ];

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Method::ChainId => "keel_chainId",
            Method::Head => "keel_head",
            Method::Rollup => "keel_rollup",
            Method::Nonce => "keel_nonce",
            Method::Balance => "keel_balance",
            Method::Submit => "keel_submit",
            Method::Queue => "keel_queue",
            Method::Batch => "keel_batch",
            Method::AccountIndex => "keel_accountIndex",
            Method::Exited => "keel_exited",
        }
    }

    /// The method a name calls.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `{address}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressParams {
    /// An L1 address.
    pub address: L1Address,
}

/// `{tx}`: a signed transaction's canonical encoding, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    /// The hex.
    pub tx: String,
}

/// `{position, max}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    /// The first queue position.
    pub position: u64,
    /// The most entries wanted.
    pub max: usize,
}

/// `{number}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchParams {
    /// The batch.
    pub number: BatchNumber,
}

/// `{pk}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyParams {
    /// An account's key.
    pub pk: PublicKey,
}

/// `{account}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountParams {
    /// The account.
    pub account: AccountIndex,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_one_name_and_params_round_trip() {
        let mut names = std::collections::HashSet::new();
        for m in Method::ALL {
            assert!(names.insert(m.name()), "{m} twice");
            assert_eq!(Method::from_name(m.name()), Some(*m));
        }
        assert_eq!(Method::from_name("eth_call"), None);
        let p = BatchParams {
            number: BatchNumber(7),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v, serde_json::json!({"number": 7}));
        assert_eq!(serde_json::from_value::<BatchParams>(v).unwrap(), p);
        assert!(
            serde_json::from_value::<BatchParams>(serde_json::json!({"number": 7, "x": 1}))
                .is_err()
        );
    }
}
