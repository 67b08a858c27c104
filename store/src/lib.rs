//! Everything durable in DxStack, on one embedded `sled` database.
//!
//! # Contract
//! Only the engine's single committer writes, through [`Txn`] and [`Store::commit`]: a whole
//! batch of commands becomes one atomic sled batch, followed by `flush` and an `fdatasync` of
//! sled's data file. Readers use [`Store`] directly. Key layouts live in [`keys`]; values are
//! encoded by [`codec`] with a format version byte.

pub mod audit;
pub mod codec;
mod db;
mod error;
pub mod keys;
pub mod network;
mod reader;
mod txn;

pub use db::{CommitStats, Store, StoreConfig};
pub use error::Error;
pub use reader::Reader;
pub use txn::{Sealed, Txn};

pub type Result<T, E = Error> = std::result::Result<T, E>;
