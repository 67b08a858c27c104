//! Durable bookkeeping of cron runs (one run per job and slot), and the idempotency purge.

use super::exec::{Done, Exec, Tx};
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use store::keys::{self, table};
use workflows::Timestamp;

/// One run of a scheduled job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronRun {
    pub job: String,
    /// The scheduled instant this run is for (manual runs: when they were asked for).
    pub slot: Timestamp,
    pub manual: bool,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `running`, `ok` or `failed`.
    pub outcome: String,
    /// The job's result as JSON text.
    pub result: String,
}

impl CronRun {
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "job": self.job,
            "slot": crate::clock::rfc3339(self.slot),
            "manual": self.manual,
            "started_at": crate::clock::rfc3339(self.started_at),
            "finished_at": self.finished_at.map(crate::clock::rfc3339),
            "outcome": self.outcome,
            "result": serde_json::from_str::<serde_json::Value>(&self.result).unwrap_or(serde_json::Value::Null),
        })
    }
}

pub fn run_key(job: &str, slot: Timestamp) -> Vec<u8> {
    keys::scoped(table::CRON_RUN, job, &(slot.0.max(0) as u64).to_be_bytes())
}

pub(super) fn claim(tx: &mut Tx<'_, '_>, job: &str, slot: Timestamp, manual: bool) -> Exec<Done> {
    let key = run_key(job, slot);
    if tx.txn.contains(&key)? {
        return Err(ApiError::Conflict(
            "already_ran",
            format!("{job} already ran for slot {}", crate::clock::rfc3339(slot)),
        )
        .into());
    }
    let run = CronRun {
        job: job.to_owned(),
        slot,
        manual,
        started_at: tx.now,
        finished_at: None,
        outcome: "running".into(),
        result: "null".into(),
    };
    tx.txn.put(key, &run)?;
    Done::json(201, &run.view())
}

pub(super) fn finish(
    tx: &mut Tx<'_, '_>,
    job: &str,
    slot: Timestamp,
    outcome: &str,
    result: &serde_json::Value,
) -> Exec<Done> {
    let key = run_key(job, slot);
    let Some(mut run): Option<CronRun> = tx.txn.get(&key)? else {
        return Err(ApiError::NotFound(format!("cron run {job}")).into());
    };
    run.finished_at = Some(tx.now);
    run.outcome = outcome.to_owned();
    run.result = result.to_string();
    tx.txn.put(key, &run)?;
    let mut done = Done::json(200, &run.view())?;
    done.to_state = Some(run.outcome.clone());
    Ok(done)
}

/// Drops up to `max` idempotency records created before `before`, oldest first.
pub(super) fn purge_idempotency(tx: &mut Tx<'_, '_>, before: Timestamp, max: usize) -> Exec<Done> {
    let start = [table::IDEMPOTENCY_BY_TIME];
    let mut end = vec![table::IDEMPOTENCY_BY_TIME];
    end.extend_from_slice(&(before.0.max(0) as u64).to_be_bytes());
    let mut doomed = Vec::new();
    // The committed store alone: a key written by this batch or the one in flight was
    // created now, never before `before`.
    for item in tx.txn.store().range(&start, &end).take(max) {
        let (k, _) = item.map_err(store::Error::from)?;
        doomed.push(k.to_vec());
    }
    let mut purged = 0u64;
    for k in &doomed {
        // Layout: prefix ‖ created_ms (8) ‖ 0 ‖ scope ‖ 0 ‖ key.
        let rest = k.get(10..).unwrap_or_default();
        if let Some(split) = rest.iter().position(|b| *b == 0) {
            let (scope, key) = (&rest[..split], &rest[split + 1..]);
            let scope = String::from_utf8_lossy(scope);
            tx.txn.delete(keys::scoped(table::IDEMPOTENCY, &scope, key));
        }
        tx.txn.delete(k.clone());
        purged += 1;
    }
    let mut done = Done::json(
        200,
        &serde_json::json!({ "purged": purged, "more": doomed.len() == max }),
    )?;
    done.audited = purged > 0;
    done.reason = Some(format!(
        "idempotency records created before {}",
        crate::clock::rfc3339(before)
    ));
    Ok(done)
}
