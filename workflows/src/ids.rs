//! Identifier newtypes. Partner-chosen ids are short validated strings; ids DxStack mints are UUIDv7.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why an id given by a caller is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.'")]
pub struct InvalidId;

/// The longest caller-chosen id accepted.
pub const ID_LEN_MAX: usize = 64;

fn check_external(s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= ID_LEN_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(InvalidId)
    }
}

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a caller-chosen id (see [`InvalidId`] for the rule).
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                check_external(s)?;
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

external_id!(
    /// An insurer, employer or benefit platform.
    PartnerId
);
external_id!(
    /// A lab, clinic or pharmacy of the network.
    ProviderId
);
external_id!(
    /// A member (insured person), unique within a partner.
    MemberId
);
external_id!(
    /// A policy, unique within a partner.
    PolicyId
);
external_id!(
    /// An operations-team member.
    OperatorId
);
external_id!(
    /// A catalog service such as `CBC`.
    ServiceCode
);

macro_rules! minted_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId)
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

minted_id!(
    /// A booking (UUIDv7, minted by the engine).
    BookingId
);
minted_id!(
    /// An exception case (UUIDv7).
    CaseId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_validated() {
        assert!(PartnerId::parse("acme-health_1.0").is_ok());
        assert_eq!(PartnerId::parse(""), Err(InvalidId));
        assert_eq!(PartnerId::parse("a b"), Err(InvalidId));
        assert_eq!(PartnerId::parse(&"x".repeat(65)), Err(InvalidId));
        assert_eq!(PartnerId::parse("é"), Err(InvalidId));
    }
}
