//! Reading through either the committed store or a batch transaction, so the same domain
//! code serves the committer (which must see its own pending writes) and read-only paths.

use crate::{codec, Result, Store, Txn};
use serde::de::DeserializeOwned;

pub trait Reader {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

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

    fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Txn::scan_prefix_raw(self, prefix)
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        Txn::get(self, key)
    }
}
