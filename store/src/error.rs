//! The store's error type.

/// Why a store operation failed. Every variant is a server-side fault, never a client's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a record: {0}")]
    Encode(String),
    #[error("cannot decode a record: {0}")]
    Decode(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A batch was applied but could not be made durable: what is on disk is unknown, so the
    /// process must not go on (the next commit's fsync could make a refused batch durable).
    #[error("a commit was applied but its flush or fdatasync failed: {0}")]
    Unsynced(String),
}
