//! The booking: the values it carries ([`Booking`]) and its lifecycle ([`machine`]).

pub mod machine;
mod model;

pub use machine::{apply, BookingCommand, BookingRecord, Error, SlaRules};
pub use model::*;
