//! A write transaction: an ordered overlay of puts and deletes over the committed store.
//!
//! The committer runs every command of a batch against one `Txn`, so a later command in the
//! same batch reads what an earlier one wrote. Nothing is visible to readers until
//! [`Store::commit_sealed`](crate::Store::commit_sealed) applies the overlay as one atomic
//! sled batch.
//!
//! A transaction may sit on a `base`: the [`Sealed`] writes of the batch before it, which may
//! still be being applied and synced while this one executes (the committer pipelines one
//! batch's commit with the next one's execution). Reads look in the transaction's own writes,
//! then the base, then the store; the base's values are the ones the store holds once it is
//! applied, so a read gives the same answer before and after.

use crate::{codec, Result, Store};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A pending value: `Some(bytes)` to write, `None` to delete.
type Pending = Option<Vec<u8>>;
type Overlay = BTreeMap<Vec<u8>, Pending>;

/// A batch's writes, sealed for commit. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sealed(Arc<Overlay>);

impl Sealed {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The batch's writes under `prefix`, in key order.
    pub(crate) fn writes_under<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a Pending)> {
        under(&self.0, prefix).map(|(k, v)| (k.as_slice(), v))
    }

    pub(crate) fn to_batch(&self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.0.iter() {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
        batch
    }
}

fn under<'o, 'p>(
    overlay: &'o Overlay,
    prefix: &'p [u8],
) -> impl Iterator<Item = (&'o Vec<u8>, &'o Pending)> + use<'o, 'p> {
    overlay
        .range(prefix.to_vec()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

pub struct Txn<'s> {
    store: &'s Store,
    overlay: Overlay,
    /// The previous batch's writes, maybe not yet applied to the store.
    base: Option<Sealed>,
    /// Undo log: each write's key and the overlay entry it replaced.
    undo: Vec<(Vec<u8>, Option<Pending>)>,
}

/// A point to roll back to when one command of a batch fails.
pub struct Savepoint(usize);

impl<'s> Txn<'s> {
    pub(crate) fn new(store: &'s Store, base: Option<Sealed>) -> Txn<'s> {
        Txn {
            store,
            overlay: BTreeMap::new(),
            base,
            undo: Vec::new(),
        }
    }

    /// Ends the transaction: its writes, ready to commit.
    pub fn seal(self) -> Sealed {
        Sealed(Arc::new(self.overlay))
    }

    /// The pending value of `key`, in this transaction or its base.
    fn lookup(&self, key: &[u8]) -> Option<&Pending> {
        self.overlay
            .get(key)
            .or_else(|| self.base.as_ref().and_then(|b| b.0.get(key)))
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
        match self.lookup(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.get_raw(key)?.map(|v| v.to_vec())),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.lookup(key) {
            Some(Some(v)) => Ok(Some(codec::decode(v)?)),
            Some(None) => Ok(None),
            None => self.store.get(key),
        }
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        match self.lookup(key) {
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
        self.lookup(key).map(|v| v.as_deref())
    }

    /// Whether this batch or its base wrote anything under `prefix`.
    pub fn has_pending_under(&self, prefix: &[u8]) -> bool {
        under(&self.overlay, prefix).next().is_some()
            || self
                .base
                .as_ref()
                .is_some_and(|b| under(&b.0, prefix).next().is_some())
    }

    /// Writes not yet in the store under `prefix` (this batch's over its base's), in key
    /// order (`None` = deleted).
    pub fn pending_under(&self, prefix: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
        let own = under(&self.overlay, prefix).map(|(k, v)| (k.as_slice(), v.as_deref()));
        let Some(b) = self
            .base
            .as_ref()
            .filter(|b| under(&b.0, prefix).next().is_some())
        else {
            return own.collect();
        };
        let mut merged: BTreeMap<&[u8], Option<&[u8]>> = under(&b.0, prefix)
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        merged.extend(own);
        merged.into_iter().collect()
    }

    /// Keys and raw values under `prefix`, committed and pending merged, in key order.
    pub fn scan_prefix_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.store.scan_prefix(prefix) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        let base = self.base.as_ref().map(|b| under(&b.0, prefix));
        for (k, v) in base
            .into_iter()
            .flatten()
            .chain(under(&self.overlay, prefix))
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
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreConfig};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            path: dir.path().join("s"),
            cache_capacity_bytes: 1 << 20,
        })
        .unwrap();
        (dir, store)
    }

    /// A batch executed while the previous one is still being committed reads the previous
    /// one's writes (over the store, under its own), before and after that commit lands.
    #[test]
    fn a_transaction_reads_through_its_base_before_and_after_the_base_is_applied() {
        let (_dir, store) = store();
        let mut first = store.txn();
        first.put_raw(b"k1".to_vec(), b"stored".to_vec());
        first.put_raw(b"k3".to_vec(), b"doomed".to_vec());
        store.commit(first).unwrap();

        let mut n = store.txn();
        n.put_raw(b"k1".to_vec(), b"from-n".to_vec());
        n.put_raw(b"k2".to_vec(), b"from-n".to_vec());
        n.delete(b"k3".to_vec());
        let n = n.seal();

        for applied in [false, true] {
            if applied {
                store.commit_sealed(&n).unwrap();
            }
            let mut next = store.txn_after(Some(n.clone()));
            next.put_raw(b"k2".to_vec(), b"from-next".to_vec());
            assert_eq!(next.get_raw(b"k1").unwrap().unwrap(), b"from-n");
            assert_eq!(next.get_raw(b"k2").unwrap().unwrap(), b"from-next");
            assert_eq!(next.get_raw(b"k3").unwrap(), None, "applied={applied}");
            assert!(!next.contains(b"k3").unwrap());
            let scan: Vec<_> = next
                .scan_prefix_raw(b"k")
                .unwrap()
                .into_iter()
                .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
                .collect();
            assert_eq!(
                scan,
                [
                    ("k1".into(), "from-n".into()),
                    ("k2".into(), "from-next".into())
                ]
            );
            if !applied {
                assert!(
                    next.has_pending_under(b"k3"),
                    "the base's delete is pending"
                );
                let pending: Vec<_> = next
                    .pending_under(b"k")
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect();
                assert_eq!(
                    pending,
                    [
                        (b"k1".to_vec(), Some(b"from-n".to_vec())),
                        (b"k2".to_vec(), Some(b"from-next".to_vec())),
                        (b"k3".to_vec(), None),
                    ]
                );
            }
        }
    }
}
