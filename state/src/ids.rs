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

/// Why text is not an [`L1Address`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an L1 address (40 hex digits, `0x` optional)")]
pub struct BadL1Address(pub String);

impl std::str::FromStr for L1Address {
    type Err = BadL1Address;

    /// 40 hex digits, with or without `0x`: what [`fmt::Display`] writes.
    fn from_str(s: &str) -> Result<Self, BadL1Address> {
        let digits = s.strip_prefix("0x").unwrap_or(s).as_bytes();
        let bad = || BadL1Address(s.to_owned());
        if digits.len() != 40 {
            return Err(bad());
        }
        let mut out = [0u8; 20];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let nibble = |c: u8| (c as char).to_digit(16).ok_or_else(bad);
            *byte = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
        }
        Ok(L1Address(out))
    }
}

impl fmt::Display for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_round_trips_through_its_text_and_anything_else_is_refused() {
        let a = L1Address([0xab; 20]);
        assert_eq!(a.to_string().parse::<L1Address>(), Ok(a));
        assert_eq!(a.to_string()[2..].parse::<L1Address>(), Ok(a));
        for bad in [
            "",
            "0x12",
            "zz",
            &"0".repeat(42),
            &format!("0x{}", "g".repeat(40)),
        ] {
            assert!(bad.parse::<L1Address>().is_err(), "{bad:?}");
        }
    }
}
