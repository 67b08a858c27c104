//! Opening the database, reads, and the durable group commit.

use crate::network::{NetworkDelta, NetworkIndex};
use crate::{codec, keys::table, Error, Result, Sealed, Txn};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// sled's page cache, in bytes. Bounds memory: the store is larger than RAM in production.
    pub cache_capacity_bytes: u64,
}

/// What one group commit cost.
#[derive(Debug, Clone, Copy)]
pub struct CommitStats {
    pub writes: usize,
    pub flush: Duration,
    pub fdatasync: Duration,
}

/// The database. Cheap to clone (sled handles are reference-counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// An fd of sled's data file, kept only to `fdatasync` it after every flush.
    data_file: Arc<File>,
    path: PathBuf,
    /// The provider network and its day counters in memory, for routing (see [`NetworkIndex`]).
    network: Arc<RwLock<NetworkIndex>>,
}

impl Store {
    pub fn open(config: &StoreConfig) -> Result<Store> {
        std::fs::create_dir_all(&config.path)?;
        let db = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        // The directory entries of sled's files must be durable too (first start).
        File::open(&config.path)?.sync_all()?;
        let data_path = config.path.join("db");
        let data_file = File::open(&data_path).map_err(|e| {
            Error::Corrupt(format!(
                "sled data file {} cannot be opened: {e}",
                data_path.display()
            ))
        })?;
        let mut network = NetworkIndex::new();
        let mut delta = NetworkDelta::default();
        for prefix in [table::PROVIDER, table::CAPACITY] {
            for item in db.scan_prefix([prefix]) {
                let (k, v) = item?;
                delta.add(&k, Some(&v))?;
            }
        }
        network.apply(delta);
        Ok(Store {
            db,
            data_file: Arc::new(data_file),
            path: config.path.clone(),
            network: Arc::new(RwLock::new(network)),
        })
    }

    /// The network index, as of the last commit. Hold the guard briefly: a commit that changes
    /// the network waits for it.
    pub fn network(&self) -> RwLockReadGuard<'_, NetworkIndex> {
        // A panic while holding the lock cannot leave the index half-changed: `apply` does
        // not fail, so a poisoned lock still guards a whole index.
        self.network.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops capacity counters of days before `day` from memory (see
    /// [`NetworkIndex::forget_days_before`]).
    pub fn forget_capacity_before(&self, day: i32) {
        self.network
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .forget_days_before(day);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a write transaction (used only by the committer).
    pub fn txn(&self) -> Txn<'_> {
        Txn::new(self, None)
    }

    /// Starts a write transaction that reads through `base`, the sealed writes of a batch
    /// being committed meanwhile (see [`Txn`]).
    pub fn txn_after(&self, base: Option<Sealed>) -> Txn<'_> {
        Txn::new(self, base)
    }

    /// Applies a transaction's writes atomically and makes them durable:
    /// one `apply_batch`, one `flush`, one `fdatasync`.
    ///
    /// # Important
    /// sled 0.34's `flush` ends in `sync_file_range`, which survives a process crash but not a
    /// power loss; the `fdatasync` that follows is what makes "acknowledged" mean "on disk".
    pub fn commit(&self, txn: Txn<'_>) -> Result<CommitStats> {
        self.commit_sealed(&txn.seal())
    }

    /// [`Store::commit`] for a sealed batch (the committer commits on another thread).
    pub fn commit_sealed(&self, txn: &Sealed) -> Result<CommitStats> {
        let writes = txn.len();
        if writes == 0 {
            return Ok(CommitStats {
                writes,
                flush: Duration::ZERO,
                fdatasync: Duration::ZERO,
            });
        }
        let mut delta = NetworkDelta::default();
        for table in [table::PROVIDER, table::CAPACITY] {
            for (k, v) in txn.writes_under(&[table]) {
                delta.add(k, v.as_deref())?;
            }
        }
        self.db.apply_batch(txn.to_batch())?;
        if !delta.is_empty() {
            // Right after the batch is visible in sled, so both views move together.
            self.network
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply(delta);
        }
        let t0 = Instant::now();
        self.db
            .flush()
            .map_err(|e| Error::Unsynced(format!("flush: {e}")))?;
        let t1 = Instant::now();
        self.data_file
            .sync_data()
            .map_err(|e| Error::Unsynced(format!("fdatasync: {e}")))?;
        let t2 = Instant::now();
        Ok(CommitStats {
            writes,
            flush: t1 - t0,
            fdatasync: t2 - t1,
        })
    }

    /// Flushes and syncs everything (shutdown).
    pub fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.data_file.sync_data()?;
        Ok(())
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        Ok(self.db.get(key)?)
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(key)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.db.contains_key(key)?)
    }

    /// Keys and values under `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> sled::Iter {
        self.db.scan_prefix(prefix)
    }

    /// Keys and values in `[start, end)`.
    pub fn range(&self, start: &[u8], end: &[u8]) -> sled::Iter {
        self.db.range(start.to_vec()..end.to_vec())
    }

    /// The last entry under `prefix`.
    pub fn last_in_prefix(&self, prefix: &[u8]) -> Result<Option<(sled::IVec, sled::IVec)>> {
        Ok(self.db.scan_prefix(prefix).next_back().transpose()?)
    }

    /// Writes one raw value outside the committer. Only for tools that edit a stopped store
    /// (tests proving that tampering is detected); the service never calls it.
    pub fn overwrite_raw_for_tests(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.insert(key, value)?;
        self.sync()
    }
}
