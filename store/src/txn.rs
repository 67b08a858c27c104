//! A write transaction: an ordered overlay of puts and deletes over the committed store.
//!
//! The committer runs every command of a batch against one `Txn`, so a later command in the
//! same batch reads what an earlier one wrote. Nothing is visible to readers until
//! [`Store::commit`](crate::Store::commit) applies the overlay as one atomic sled batch.

use crate::{codec, Result, Store};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;

/// A pending value: `Some(bytes)` to write, `None` to delete.
type Pending = Option<Vec<u8>>;

pub struct Txn<'s> {
    store: &'s Store,
    overlay: BTreeMap<Vec<u8>, Pending>,
    /// Undo log: each write's key and the overlay entry it replaced.
    undo: Vec<(Vec<u8>, Option<Pending>)>,
}

/// A point to roll back to when one command of a batch fails.
pub struct Savepoint(usize);

impl<'s> Txn<'s> {
    pub(crate) fn new(store: &'s Store) -> Txn<'s> {
        Txn {
            store,
            overlay: BTreeMap::new(),
            undo: Vec::new(),
        }
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    pub fn len(&self) -> usize {
        self.overlay.len()
    }

    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty()
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.get_raw(key)?.map(|v| v.to_vec())),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.overlay.get(key) {
            Some(Some(v)) => Ok(Some(codec::decode(v)?)),
            Some(None) => Ok(None),
            None => self.store.get(key),
        }
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.is_some()),
            None => self.store.contains(key),
        }
    }

    pub fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        let bytes = codec::encode(value)?;
        self.write(key, Some(bytes));
        Ok(())
    }

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.write(key, None);
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let previous = self.overlay.insert(key.clone(), value);
        self.undo.push((key, previous));
    }

    /// The pending value of `key`: `Some(None)` = deleted in this batch, `None` = not written.
    pub fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.overlay.get(key).map(|v| v.as_deref())
    }

    /// Whether this batch wrote anything under `prefix`.
    pub fn has_pending_under(&self, prefix: &[u8]) -> bool {
        self.overlay
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// This batch's writes under `prefix`, in key order (`None` = deleted).
    pub fn pending_under(&self, prefix: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
        self.overlay
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect()
    }

    /// This batch's writes to one table, in key order.
    pub(crate) fn writes_under(&self, table: u8) -> impl Iterator<Item = (&[u8], &Pending)> {
        self.overlay
            .range(vec![table]..)
            .take_while(move |(k, _)| k.first() == Some(&table))
            .map(|(k, v)| (k.as_slice(), v))
    }

    /// Keys and raw values under `prefix`, committed and pending merged, in key order.
    pub fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.store.scan_prefix(prefix) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self
            .overlay
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Marks the current writes, to undo a failed command's partial writes.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.0 {
            let Some((key, previous)) = self.undo.pop() else {
                break;
            };
            match previous {
                Some(v) => self.overlay.insert(key, v),
                None => self.overlay.remove(&key),
            };
        }
    }

    pub(crate) fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.overlay {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}
