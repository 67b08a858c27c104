//! Commands that maintain tenants, the network and the roster (admin and partner PUTs).
//!
//! A PUT replaces the whole record and keeps `created_at`; it answers 201 when it created
//! the record and 200 when it replaced one.

use super::exec::{Done, Exec, Tx};
use crate::auth::{ApiKey, KeyOwner};
use crate::error::ApiError;
use crate::views;
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::keys::{self, table};
use workflows::network::{CatalogService, Operator, Partner, Provider};
use workflows::policy::{Member, Policy};
use workflows::Timestamp;

/// A record with creation and update times that a PUT keeps and refreshes.
trait Stamped {
    fn created_at(&self) -> Timestamp;
    fn stamp(&mut self, created: Timestamp, updated: Timestamp);
}

macro_rules! stamped {
    ($($t:ty),*) => {$(
        impl Stamped for $t {
            fn created_at(&self) -> Timestamp {
                self.created_at
            }
            fn stamp(&mut self, created: Timestamp, updated: Timestamp) {
                self.created_at = created;
                self.updated_at = updated;
            }
        }
    )*};
}

stamped!(Partner, Provider, Operator, Policy, Member);

/// Writes `record` at `key`, keeping the stored `created_at`. Returns (201 created / 200
/// replaced, the record as written).
fn upsert<T>(tx: &mut Tx<'_, '_>, key: Vec<u8>, mut record: T) -> Exec<(u16, T)>
where
    T: Serialize + DeserializeOwned + Stamped,
{
    let existing: Option<T> = tx.txn.get(&key)?;
    let (status, created) = match &existing {
        Some(old) => (200, old.created_at()),
        None => (201, tx.now),
    };
    record.stamp(created, tx.now);
    tx.txn.put(key, &record)?;
    Ok((status, record))
}

pub(super) fn put_partner(tx: &mut Tx<'_, '_>, p: &Partner) -> Exec<Done> {
    let key = keys::one(table::PARTNER, p.id.as_str().as_bytes());
    let (status, rec) = upsert(tx, key, p.clone())?;
    Done::json(status, &views::partner_view(&rec))
}

pub(super) fn put_catalog(tx: &mut Tx<'_, '_>, s: &CatalogService) -> Exec<Done> {
    let key = keys::one(table::CATALOG, s.code.as_str().as_bytes());
    let mut rec = s.clone();
    rec.updated_at = tx.now;
    let status = if tx.txn.contains(&key)? { 200 } else { 201 };
    tx.txn.put(key, &rec)?;
    Done::json(status, &views::catalog_view(&rec))
}

pub(super) fn put_provider(tx: &mut Tx<'_, '_>, p: &Provider) -> Exec<Done> {
    let key = keys::one(table::PROVIDER, p.id.as_str().as_bytes());
    let (status, rec) = upsert(tx, key, p.clone())?;
    Done::json(status, &views::provider_view(&rec))
}

pub(super) fn put_operator(tx: &mut Tx<'_, '_>, o: &Operator) -> Exec<Done> {
    let key = keys::one(table::OPERATOR, o.id.as_str().as_bytes());
    let (status, rec) = upsert(tx, key, o.clone())?;
    Done::json(status, &views::operator_view(&rec))
}

pub(super) fn put_policy(tx: &mut Tx<'_, '_>, p: &Policy) -> Exec<Done> {
    let key = keys::scoped(
        table::POLICY,
        p.partner_id.as_str(),
        p.id.as_str().as_bytes(),
    );
    let (status, rec) = upsert(tx, key, p.clone())?;
    Done::json(status, &views::policy_view(&rec))
}

pub(super) fn put_member(tx: &mut Tx<'_, '_>, m: &Member) -> Exec<Done> {
    let policy_key = keys::scoped(
        table::POLICY,
        m.partner_id.as_str(),
        m.policy_id.as_str().as_bytes(),
    );
    if !tx.txn.contains(&policy_key)? {
        return Err(ApiError::Unprocessable(
            "unknown_policy",
            format!("policy {} does not exist", m.policy_id),
        )
        .into());
    }
    let key = keys::scoped(
        table::MEMBER,
        m.partner_id.as_str(),
        m.id.as_str().as_bytes(),
    );
    let (status, rec) = upsert(tx, key, m.clone())?;
    Done::json(status, &views::member_view(&rec))
}

pub(super) fn import_members(tx: &mut Tx<'_, '_>, members: &[Member]) -> Exec<Done> {
    let (mut created, mut replaced) = (0u64, 0u64);
    for m in members {
        let key = keys::scoped(
            table::MEMBER,
            m.partner_id.as_str(),
            m.id.as_str().as_bytes(),
        );
        let (status, _) = upsert(tx, key, m.clone())?;
        if status == 201 {
            created += 1;
        } else {
            replaced += 1;
        }
    }
    let mut done = Done::json(
        200,
        &serde_json::json!({ "created": created, "replaced": replaced }),
    )?;
    done.reason = Some(format!("{} roster rows", members.len()));
    Ok(done)
}

pub(super) fn create_key(
    tx: &mut Tx<'_, '_>,
    owner: &KeyOwner,
    key_id: &str,
    key_hash: &[u8; 32],
    key_plain: &str,
) -> Exec<Done> {
    let owner_key = match owner {
        KeyOwner::Partner(p) => keys::one(table::PARTNER, p.as_str().as_bytes()),
        KeyOwner::Provider(p) => keys::one(table::PROVIDER, p.as_str().as_bytes()),
        KeyOwner::Operator(o) => keys::one(table::OPERATOR, o.as_str().as_bytes()),
    };
    if !tx.txn.contains(&owner_key)? {
        return Err(ApiError::NotFound(format!("{} {}", owner.kind(), owner.id())).into());
    }
    let record = ApiKey {
        key_id: key_id.to_owned(),
        owner: owner.clone(),
        created_at: tx.now,
    };
    tx.txn.put(keys::one(table::API_KEY, key_hash), &record)?;
    let shown = serde_json::json!({
        "key": key_plain,
        "key_id": key_id,
        "owner": { "kind": owner.kind(), "id": owner.id() },
        "created_at": tx.at,
    });
    let replayed = serde_json::json!({
        "key": null,
        "key_id": key_id,
        "owner": { "kind": owner.kind(), "id": owner.id() },
        "created_at": tx.at,
        "note": "a key is shown only once; create another key if this one was lost",
    });
    let mut done = Done::json(201, &shown)?;
    done.replay_body = Some(serde_json::to_vec(&replayed).map_err(ApiError::internal)?);
    Ok(done)
}
