//! Every key layout of the store, in one place.
//!
//! All tables share one sled tree so that a group commit is a single atomic `apply_batch`.
//! A key is `[table prefix] ‖ parts`. Numbers are big-endian so byte order is numeric order;
//! caller-chosen ids never contain `0x00`, which separates variable-length parts.
//!
//! # Important
//! A retired prefix is never reused: old records must never be misread as new ones.

/// Table prefixes.
pub mod table {
    pub const PARTNER: u8 = 0x01;
    pub const API_KEY: u8 = 0x02;
    pub const CATALOG: u8 = 0x03;
    pub const PROVIDER: u8 = 0x04;
    pub const OPERATOR: u8 = 0x05;
    pub const POLICY: u8 = 0x06;
    pub const MEMBER: u8 = 0x07;
    pub const BOOKING: u8 = 0x08;
    pub const BOOKING_BY_PARTNER: u8 = 0x09;
    pub const BOOKING_BY_REF: u8 = 0x0A;
    pub const BOOKING_BY_PROVIDER: u8 = 0x0B;
    pub const IDEMPOTENCY: u8 = 0x0C;
    pub const TIMER: u8 = 0x0D;
    pub const AUDIT: u8 = 0x0E;
    pub const AUDIT_BY_TARGET: u8 = 0x0F;
    pub const META: u8 = 0x10;
    pub const CAPACITY: u8 = 0x11;
    pub const CASE: u8 = 0x12;
    pub const BOOKING_BY_MEMBER: u8 = 0x13;
    pub const IDEMPOTENCY_BY_TIME: u8 = 0x14;
    pub const CASE_BY_BOOKING: u8 = 0x15;
    pub const CRON_RUN: u8 = 0x16;
    pub const ENTITLEMENT: u8 = 0x17;
    pub const ENTITLEMENT_MOVE: u8 = 0x18;
    /// Retired: the pincode and geo indexes of the network live in memory
    /// (`crate::network`), built from `PROVIDER` records. Stores written before may still
    /// hold keys under these two prefixes; nothing reads them.
    pub const RETIRED_PROVIDER_BY_PINCODE: u8 = 0x19;
    pub const RETIRED_PROVIDER_BY_CELL: u8 = 0x1A;
    pub const WEBHOOK_ENDPOINT: u8 = 0x1B;
    pub const DELIVERY: u8 = 0x1C;
    pub const DELIVERY_DUE: u8 = 0x1D;
    pub const DELIVERY_BY_PARTNER: u8 = 0x1E;
    pub const DELIVERY_CHAIN: u8 = 0x1F;
    pub const APPROVAL: u8 = 0x20;
}

const SEP: u8 = 0x00;

/// `prefix ‖ part₁ ‖ 0 ‖ part₂ ‖ 0 … ‖ tail` (the tail has no separator after it).
pub fn compose(prefix: u8, parts: &[&[u8]], tail: &[u8]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>() + tail.len();
    let mut k = Vec::with_capacity(len);
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
        k.push(SEP);
    }
    k.extend_from_slice(tail);
    k
}

pub fn one(prefix: u8, id: &[u8]) -> Vec<u8> {
    compose(prefix, &[], id)
}

/// Scoped to a tenant: `prefix ‖ tenant ‖ 0 ‖ id`.
pub fn scoped(prefix: u8, tenant: &str, id: &[u8]) -> Vec<u8> {
    compose(prefix, &[tenant.as_bytes()], id)
}

/// Timer key: `TIMER ‖ due_ms (u64 BE) ‖ booking id (16) ‖ kind (1) ‖ phase (1)`.
/// The first key in the table is the next timer due.
pub fn timer(due_ms: u64, booking: &[u8; 16], kind: u8, phase: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(27);
    k.push(table::TIMER);
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(booking);
    k.push(kind);
    k.push(phase);
    k
}

/// The parts of a timer key: `(due_ms, booking id, kind, phase)`.
pub fn parse_timer(key: &[u8]) -> Option<(u64, [u8; 16], u8, u8)> {
    if key.len() != 27 || key[0] != table::TIMER {
        return None;
    }
    let due = u64::from_be_bytes(key.get(1..9)?.try_into().ok()?);
    let booking: [u8; 16] = key.get(9..25)?.try_into().ok()?;
    Some((due, booking, key[25], key[26]))
}

/// Audit key: `AUDIT ‖ seq (u64 BE)`.
pub fn audit(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(table::AUDIT);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `AUDIT_BY_TARGET ‖ target id ‖ 0 ‖ seq (u64 BE)`.
pub fn audit_by_target(target: &str, seq: u64) -> Vec<u8> {
    scoped(table::AUDIT_BY_TARGET, target, &seq.to_be_bytes())
}

/// `CAPACITY ‖ provider ‖ 0 ‖ India day (i32 BE, offset so it sorts)`.
pub fn capacity(provider: &str, day: i32) -> Vec<u8> {
    scoped(
        table::CAPACITY,
        provider,
        &((day as u32) ^ 0x8000_0000).to_be_bytes(),
    )
}

/// Ledger row: `ENTITLEMENT ‖ partner ‖ 0 ‖ holder ‖ 0 ‖ policy ‖ 0 ‖ year start (i32, sortable) ‖ benefit`.
pub fn entitlement(
    partner: &str,
    holder: &str,
    policy: &str,
    year_start: i32,
    benefit: &str,
) -> Vec<u8> {
    let mut tail = ((year_start as u32) ^ 0x8000_0000).to_be_bytes().to_vec();
    tail.extend_from_slice(benefit.as_bytes());
    compose(
        table::ENTITLEMENT,
        &[partner.as_bytes(), holder.as_bytes(), policy.as_bytes()],
        &tail,
    )
}

/// Ledger move: `ENTITLEMENT_MOVE ‖ partner ‖ 0 ‖ holder ‖ 0 ‖ move id (UUIDv7, time-ordered)`.
pub fn entitlement_move(partner: &str, holder: &str, move_id: &[u8; 16]) -> Vec<u8> {
    compose(
        table::ENTITLEMENT_MOVE,
        &[partner.as_bytes(), holder.as_bytes()],
        move_id,
    )
}

/// `DELIVERY_DUE ‖ due_ms (u64 BE) ‖ delivery id (16)`: the first key is the next to send.
pub fn delivery_due(due_ms: u64, delivery: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(table::DELIVERY_DUE);
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(delivery);
    k
}

/// `DELIVERY_CHAIN ‖ endpoint ‖ 0 ‖ partner ‖ 0 ‖ subject (16) ‖ delivery id (16)`: the
/// undelivered deliveries of one subject (booking) to one endpoint, oldest first. Only the
/// first of a chain is due; the next becomes due when it is delivered or dead.
pub fn delivery_chain(
    endpoint: &str,
    partner: &str,
    subject: &[u8; 16],
    delivery: &[u8; 16],
) -> Vec<u8> {
    let mut k = delivery_chain_prefix(endpoint, partner, subject);
    k.extend_from_slice(delivery);
    k
}

pub fn delivery_chain_prefix(endpoint: &str, partner: &str, subject: &[u8; 16]) -> Vec<u8> {
    compose(
        table::DELIVERY_CHAIN,
        &[endpoint.as_bytes(), partner.as_bytes()],
        subject,
    )
}

/// The last 8 bytes of a key as a big-endian u64 (sequence numbers, times).
pub fn tail_u64(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let bytes: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The last 16 bytes of a key (a UUID).
pub fn tail_uuid(key: &[u8]) -> Option<[u8; 16]> {
    let start = key.len().checked_sub(16)?;
    key.get(start..)?.try_into().ok()
}

/// The byte just past every key that starts with `prefix` (for range scans).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_sort_by_due_time_first() {
        let a = timer(5, &[9; 16], 0, 0);
        let b = timer(6, &[0; 16], 0, 0);
        assert!(a < b);
        assert_eq!(a.len(), 27);
        assert_eq!(parse_timer(&a), Some((5, [9; 16], 0, 0)));
        assert_eq!(parse_timer(&a[..26]), None);
    }

    #[test]
    fn scoped_keys_do_not_collide_across_tenants() {
        assert_ne!(scoped(1, "ab", b"c"), scoped(1, "a", b"bc"));
    }
}
