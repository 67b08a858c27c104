//! Read-side helpers shared by the API handlers and the committer.

use store::keys::{self, table};
use store::Store;
use workflows::booking::BookingRecord;
use workflows::case::ExceptionCase;
use workflows::BookingId;

/// Loads the cases named by `CASE_BY_BOOKING` index keys, through `get`.
pub fn cases_in<I, G>(index_keys: I, get: G) -> store::Result<Vec<ExceptionCase>>
where
    I: IntoIterator<Item = Vec<u8>>,
    G: Fn(&[u8]) -> store::Result<Option<ExceptionCase>>,
{
    let mut out = Vec::new();
    for k in index_keys {
        if let Some(case_id) = keys::tail_uuid(&k) {
            if let Some(c) = get(&keys::one(table::CASE, &case_id))? {
                out.push(c);
            }
        }
    }
    Ok(out)
}

pub fn booking(store: &Store, id: BookingId) -> store::Result<Option<BookingRecord>> {
    store.get(&keys::one(table::BOOKING, id.as_bytes()))
}

pub fn booking_cases(store: &Store, id: BookingId) -> store::Result<Vec<ExceptionCase>> {
    let prefix = keys::compose(table::CASE_BY_BOOKING, &[], id.as_bytes());
    let mut index_keys = Vec::new();
    for item in store.scan_prefix(&prefix) {
        let (k, _) = item?;
        index_keys.push(k.to_vec());
    }
    cases_in(index_keys, |k| store.get(k))
}
