//! Reading through either the committed store or a batch transaction, so the same domain
//! code serves the committer (which must see its own pending writes) and read-only paths.

use crate::{codec, Result, Store, Txn};
use serde::de::DeserializeOwned;

pub trait Reader {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The committed store (and its in-memory network index).
    fn store(&self) -> &Store;

    /// A write not yet committed: `Some(None)` = deleted. The committed store has none.
    fn pending(&self, _key: &[u8]) -> Option<Option<&[u8]>> {
        None
    }

    /// Whether uncommitted writes exist under `prefix`.
    fn has_pending_under(&self, _prefix: &[u8]) -> bool {
        false
    }

    /// Uncommitted writes under `prefix`, in key order (`None` = deleted).
    fn pending_under(&self, _prefix: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
        Vec::new()
    }

    /// Keys and raw values under `prefix`, in key order.
    fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.get_raw(key)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }
}

impl Reader for Store {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(Store::get_raw(self, key)?.map(|v| v.to_vec()))
    }

    fn store(&self) -> &Store {
        self
    }

    fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.scan_prefix(prefix) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

impl Reader for Txn<'_> {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Txn::get_raw(self, key)
    }

    fn store(&self) -> &Store {
        Txn::store(self)
    }

    fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        Txn::pending(self, key)
    }

    fn has_pending_under(&self, prefix: &[u8]) -> bool {
        Txn::has_pending_under(self, prefix)
    }

    fn pending_under(&self, prefix: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
        Txn::pending_under(self, prefix)
    }

    fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Txn::scan_prefix_raw(self, prefix)
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        Txn::get(self, key)
    }
}
