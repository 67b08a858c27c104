//! Pure domain workflows of DxStack: typed state machines and the values they work on.
//!
//! # Contract
//! Nothing in this crate performs I/O, reads a clock or draws randomness. Every transition takes
//! the current state, a command and `now`, and returns the new state plus a list of [`Effect`]s
//! that the engine writes in the same atomic batch. That makes every edge unit-testable and
//! property-testable, and makes replaying a command deterministic.

pub mod booking;
pub mod case;
pub mod effect;
pub mod eligibility;
pub mod ids;
pub mod money;
pub mod network;
pub mod policy;
pub mod routing;
pub mod sla;
pub mod time;

pub use effect::{Effect, EventType};
pub use ids::*;
pub use money::Paise;
pub use time::{Date, Millis, Timestamp};
