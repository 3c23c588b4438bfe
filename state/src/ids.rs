//! Typed identifiers: an account index is not a batch number is not an epoch.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

typed_id!(
    /// Position of an account's leaf in the state tree (`< 2^depth`).
    AccountIndex(u32)
);
typed_id!(
    /// Sequence number of a batch; the first batch is 1, the genesis state is batch 0.
    BatchNumber(u64)
);
typed_id!(
    /// Sequencer lease epoch held by the L1; batches from a stale epoch are rejected.
    Epoch(u64)
);

impl BatchNumber {
    /// The batch that follows this one, `None` at `u64::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

/// A 20-byte L1 account address, the recipient of a withdrawal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct L1Address(pub [u8; 20]);

impl fmt::Display for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
