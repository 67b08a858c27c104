//! The tamper-evident audit chain.
//!
//! # Contract
//! Entries have `seq` 1, 2, 3 … without gaps. `hash = SHA-256(prev_hash as 32 raw bytes ‖
//! canonical JSON of the entry without "hash")`, where canonical JSON has keys sorted and no
//! insignificant whitespace, and the entry includes `prev_hash` as lowercase hex. The genesis
//! `prev_hash` is 32 zero bytes. Values are stored as the canonical JSON of the whole entry
//! (the exported line), so export streams stored bytes and any SHA-256 tool can verify it.
//! Only the committer appends, so the head needs no lock.

use crate::keys::{self, table};
use crate::{Error, Result, Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Who did it. Fields are declared in key order: serialising is already canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    /// `admin`, `partner`, `provider`, `operator` or `system`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub kind: String,
}

/// One chain entry as stored and exported. Fields without a value are omitted.
///
/// # Important
/// Fields are declared in lexicographic key order, so `serde_json` output of this struct *is*
/// its canonical JSON (a test pins that); keep the order when adding a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: String,
    pub actor: Actor,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable error code of a rejected command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// `rejected` for a refused command; absent when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub prev_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub seq: u64,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
}

/// An entry before the chain assigns `seq` and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub at: String,
    pub actor: Actor,
    pub action: String,
    pub target: Target,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub detail: Option<String>,
}

/// The newest entry's `seq` and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: [0; 32],
    };

    /// Reads the head from the store (the last entry), or genesis for an empty chain.
    pub fn load(store: &Store) -> Result<ChainHead> {
        match store.last_in_prefix(&[table::AUDIT])? {
            None => Ok(ChainHead::GENESIS),
            Some((_, v)) => {
                let probe: Probe = serde_json::from_slice(&v)
                    .map_err(|e| Error::Corrupt(format!("audit head: {e}")))?;
                Ok(ChainHead {
                    seq: probe.seq,
                    hash: parse_hash(&probe.hash)
                        .ok_or_else(|| Error::Corrupt("audit head hash".into()))?,
                })
            }
        }
    }
}

/// Canonical JSON: object keys sorted, no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn entry_hash(prev: &[u8; 32], canonical_without_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical_without_hash);
    h.finalize().into()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

/// Appends `draft` to the chain in `txn`, advancing `head`. Returns the stored entry.
pub fn append(txn: &mut Txn<'_>, head: &mut ChainHead, draft: AuditDraft) -> Result<AuditEntry> {
    let mut entry = AuditEntry {
        seq: head.seq + 1,
        at: draft.at,
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        from_state: draft.from_state,
        to_state: draft.to_state,
        reason: draft.reason,
        request_id: draft.request_id,
        outcome: draft.outcome,
        error: draft.error,
        detail: draft.detail,
        prev_hash: hex::encode(head.hash),
        hash: String::new(),
    };
    let unhashed = serde_json::to_value(&entry).map_err(|e| Error::Encode(e.to_string()))?;
    let hash = entry_hash(&head.hash, canonical_json(&unhashed).as_bytes());
    entry.hash = hex::encode(hash);
    let stored =
        canonical_json(&serde_json::to_value(&entry).map_err(|e| Error::Encode(e.to_string()))?);
    // Pair assertion: what we store must verify on its own.
    debug_assert_eq!(check_line(stored.as_bytes(), head), Ok(hash));
    txn.put_raw(keys::audit(entry.seq), stored.into_bytes());
    txn.put_raw(
        keys::audit_by_target(&entry.target.id, entry.seq),
        Vec::new(),
    );
    head.seq = entry.seq;
    head.hash = hash;
    Ok(entry)
}

#[derive(Deserialize)]
struct Probe {
    seq: u64,
    prev_hash: String,
    hash: String,
}

/// Checks one stored/exported line against the previous head; returns its hash.
fn check_line(line: &[u8], prev: &ChainHead) -> std::result::Result<[u8; 32], String> {
    let probe: Probe = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    if probe.seq != prev.seq + 1 {
        return Err(format!(
            "expected seq {}, found {}",
            prev.seq + 1,
            probe.seq
        ));
    }
    if parse_hash(&probe.prev_hash) != Some(prev.hash) {
        return Err("prev_hash does not match the previous entry".into());
    }
    let claimed = parse_hash(&probe.hash).ok_or("hash is not 64 hex digits")?;
    // Fast path: a stored or exported line is canonical, so the hashed form is the line with
    // its `"hash"` member cut out. Anything else falls through to re-canonicalising.
    if let Some(unhashed) = without_hash_member(line, &probe.hash) {
        if entry_hash(&prev.hash, &unhashed) == claimed {
            return Ok(claimed);
        }
    }
    let mut value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    if let Value::Object(map) = &mut value {
        map.remove("hash");
    }
    let computed = entry_hash(&prev.hash, canonical_json(&value).as_bytes());
    if computed != claimed {
        return Err("hash does not match the entry's content".into());
    }
    Ok(computed)
}

/// `line` without its `,"hash":"…"` member, if it has exactly that shape.
fn without_hash_member(line: &[u8], hash: &str) -> Option<Vec<u8>> {
    let needle = format!(",\"hash\":\"{hash}\"");
    let at = line
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?;
    let mut out = Vec::with_capacity(line.len() - needle.len());
    out.extend_from_slice(&line[..at]);
    out.extend_from_slice(&line[at + needle.len()..]);
    Some(out)
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: u64,
    pub head_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Verifies a sequence of entry lines (stored values or an export's lines), in order.
pub fn verify_lines<I, L>(lines: I) -> Result<VerifyReport>
where
    I: IntoIterator<Item = Result<L>>,
    L: AsRef<[u8]>,
{
    let mut head = ChainHead::GENESIS;
    for line in lines {
        let line = line?;
        let line = line.as_ref();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match check_line(line, &head) {
            Ok(hash) => {
                head.seq += 1;
                head.hash = hash;
            }
            Err(reason) => {
                return Ok(VerifyReport {
                    ok: false,
                    entries: head.seq,
                    head_hash: hex::encode(head.hash),
                    broken_seq: Some(head.seq + 1),
                    reason: Some(reason),
                })
            }
        }
    }
    Ok(VerifyReport {
        ok: true,
        entries: head.seq,
        head_hash: hex::encode(head.hash),
        broken_seq: None,
        reason: None,
    })
}

/// Verifies the whole chain in a store.
pub fn verify_store(store: &Store) -> Result<VerifyReport> {
    verify_lines(
        store
            .scan_prefix(&[table::AUDIT])
            .map(|r| r.map(|(_, v)| v).map_err(Error::from)),
    )
}

/// Entries from `from_seq` on, in order (raw stored JSON).
pub fn iter_from(store: &Store, from_seq: u64) -> impl Iterator<Item = Result<sled::IVec>> {
    store
        .range(&keys::audit(from_seq), &[table::AUDIT + 1])
        .map(|r| r.map(|(_, v)| v).map_err(Error::from))
}

/// The `seq`s of entries about one target, oldest first.
pub fn seqs_for_target(store: &Store, target_id: &str) -> Result<Vec<u64>> {
    let prefix = keys::scoped(table::AUDIT_BY_TARGET, target_id, &[]);
    let mut out = Vec::new();
    for item in store.scan_prefix(&prefix) {
        let (k, _) = item?;
        if let Some(seq) = keys::tail_u64(&k) {
            out.push(seq);
        }
    }
    Ok(out)
}

/// One entry by `seq`.
pub fn get(store: &Store, seq: u64) -> Result<Option<AuditEntry>> {
    match store.get_raw(&keys::audit(seq))? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("audit entry {seq}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn draft(i: u32) -> AuditDraft {
        AuditDraft {
            at: "2026-01-01T00:00:00Z".into(),
            actor: Actor {
                kind: "system".into(),
                id: "timer".into(),
                role: None,
            },
            action: format!("test.{i}"),
            target: Target {
                kind: "booking".into(),
                id: "b1".into(),
            },
            from_state: None,
            to_state: Some("confirmed".into()),
            reason: Some("a \"quoted\" reason ✓".into()),
            request_id: None,
            outcome: None,
            error: None,
            detail: None,
        }
    }

    #[test]
    fn appended_chain_verifies_and_tampering_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            path: dir.path().join("db"),
            cache_capacity_bytes: 1 << 20,
        })
        .unwrap();
        let mut head = ChainHead::GENESIS;
        for round in 0..3 {
            let mut txn = store.txn();
            for i in 0..5 {
                append(&mut txn, &mut head, draft(round * 5 + i)).unwrap();
            }
            store.commit(txn).unwrap();
        }
        let report = verify_store(&store).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 15);
        assert_eq!(ChainHead::load(&store).unwrap(), head);
        assert_eq!(seqs_for_target(&store, "b1").unwrap().len(), 15);

        let mut e = get(&store, 7).unwrap().unwrap();
        e.reason = Some("rewritten".into());
        let forged = canonical_json(&serde_json::to_value(&e).unwrap());
        store
            .overwrite_raw_for_tests(&keys::audit(7), forged.as_bytes())
            .unwrap();
        let report = verify_store(&store).unwrap();
        assert!(!report.ok);
        assert_eq!(report.broken_seq, Some(7));
    }

    #[test]
    fn entries_serialise_canonically() {
        let mut e = AuditEntry {
            action: "booking.create".into(),
            actor: Actor {
                id: "op1".into(),
                kind: "operator".into(),
                role: Some("agent".into()),
            },
            at: "2026-01-01T00:00:00Z".into(),
            detail: Some("d".into()),
            error: Some("e".into()),
            from_state: Some("a".into()),
            hash: "ff".into(),
            outcome: Some("rejected".into()),
            prev_hash: "00".into(),
            reason: Some("r \"q\" \u{7}".into()),
            request_id: Some("rid".into()),
            seq: 9,
            target: Target {
                id: "b1".into(),
                kind: "booking".into(),
            },
            to_state: Some("b".into()),
        };
        for _ in 0..2 {
            let direct = serde_json::to_string(&e).unwrap();
            assert_eq!(direct, canonical_json(&serde_json::to_value(&e).unwrap()));
            e.hash.clear();
            e.detail = None;
            e.actor.role = None;
        }
    }

    #[test]
    fn canonical_json_sorts_keys_without_whitespace() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": {"d": [1, 2], "c": "x"}}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }
}
