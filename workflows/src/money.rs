//! Money: integer paise, never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of Indian rupees in paise (1/100 INR). Non-negative by construction at the edges;
/// arithmetic saturates rather than wrapping so a bug can never mint money.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Paise(pub i64);

impl Paise {
    pub const ZERO: Paise = Paise(0);

    pub fn saturating_add(self, other: Paise) -> Paise {
        Paise(self.0.saturating_add(other.0))
    }
    pub fn saturating_sub(self, other: Paise) -> Paise {
        Paise(self.0.saturating_sub(other.0))
    }
}

impl std::iter::Sum for Paise {
    fn sum<I: Iterator<Item = Paise>>(iter: I) -> Paise {
        iter.fold(Paise::ZERO, Paise::saturating_add)
    }
}

impl fmt::Display for Paise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} paise", self.0)
    }
}
