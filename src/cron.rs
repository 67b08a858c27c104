//! Scheduled jobs on `tokio-cron-scheduler`: one registry, schedules from `[cron]` (India time),
//! every run recorded durably, at most one run per job and slot, and a slot missed while the
//! service was down run once at start-up.

use crate::auth::Principal;
use crate::engine::{Command, CronRun, Handle, Request};
use crate::error::ApiError;
use chrono::{DateTime, FixedOffset, TimeZone};
use croner::Cron;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::keys::{self, table};
use store::Store;
use tokio_cron_scheduler::{Job, JobScheduler};
use workflows::Timestamp;

/// The jobs this build runs, with their default schedules.
pub const JOBS: &[(&str, &str)] = &[("purge_idempotency_keys", "0 15 * * * *")];

/// Jobs the configuration may name that a later release runs; accepted and reported, not run.
pub const PLANNED_JOBS: &[&str] = &["settlement_cycle", "mis_daily"];

/// How long an idempotency record is kept.
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3_600_000;
/// Records dropped per purge command (bounds one group commit).
const PURGE_CHUNK: usize = 2_000;

/// Schedules are read in India time (UTC+05:30), like every business day in DxStack.
fn india() -> FixedOffset {
    #[allow(clippy::expect_used)]
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("UTC+05:30 is a valid offset")
}

pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("`{expr}` is not a cron schedule (seconds first): {e}"))
}

/// The schedules in force: defaults overridden by `[cron]`; unknown job names are errors.
pub fn schedules(config: &BTreeMap<String, String>) -> anyhow::Result<Vec<(String, String, Cron)>> {
    for name in config.keys() {
        anyhow::ensure!(
            JOBS.iter().any(|(j, _)| j == name) || PLANNED_JOBS.contains(&name.as_str()),
            "[cron] {name}: unknown job (known: {})",
            JOBS.iter()
                .map(|(j, _)| *j)
                .chain(PLANNED_JOBS.iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut out = Vec::new();
    for (job, default) in JOBS {
        let expr = config.get(*job).map(String::as_str).unwrap_or(default);
        let cron = parse_schedule(expr).map_err(|e| anyhow::anyhow!("[cron] {job}: {e}"))?;
        out.push((job.to_string(), expr.to_string(), cron));
    }
    Ok(out)
}

fn to_ts(dt: DateTime<FixedOffset>) -> Timestamp {
    Timestamp(dt.timestamp_millis())
}

/// The latest scheduled instant at or before `now` (whole seconds: croner would otherwise
/// answer a matching second with `now` itself, milliseconds and all).
fn latest_slot(cron: &Cron, now: Timestamp) -> Option<Timestamp> {
    let at = india()
        .timestamp_millis_opt(now.0.div_euclid(1000) * 1000)
        .single()?;
    cron.find_previous_occurrence(&at, true).ok().map(to_ts)
}

/// Runs jobs: shared by the scheduler, start-up catch-up and `POST /v1/admin/jobs/{job}/run`.
#[derive(Clone)]
pub struct CronRunner {
    pub store: Store,
    pub engine: Handle,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl CronRunner {
    async fn submit(&self, command: Command) -> crate::engine::Reply {
        self.engine
            .submit(Request {
                principal: Principal::System("cron"),
                request_id: format!("cron-{}", uuid::Uuid::now_v7()),
                idempotency: None,
                command,
            })
            .await
    }

    /// Claims `slot` for `job`, runs it, records the outcome. `Ok(None)` if the slot already ran.
    pub async fn run(
        &self,
        job: &str,
        slot: Timestamp,
        manual: bool,
    ) -> Result<Option<CronRun>, ApiError> {
        let claim = self
            .submit(Command::ClaimCronRun {
                job: job.into(),
                slot,
                manual,
            })
            .await;
        match claim.status {
            201 => {}
            409 => return Ok(None),
            _ => {
                return Err(ApiError::Internal(
                    String::from_utf8_lossy(&claim.body).into(),
                ))
            }
        }
        let (outcome, result) = match self.execute(job).await {
            Ok(v) => ("ok", v),
            Err(e) => ("failed", serde_json::json!({ "error": e.to_string() })),
        };
        self.metrics
            .cron_runs
            .with_label_values(&[job, outcome])
            .inc();
        let finish = self
            .submit(Command::FinishCronRun {
                job: job.into(),
                slot,
                outcome: outcome.into(),
                result,
            })
            .await;
        if finish.status != 200 {
            return Err(ApiError::Internal(
                String::from_utf8_lossy(&finish.body).into(),
            ));
        }
        Ok(self.store.get(&crate::engine::cron_run_key(job, slot))?)
    }

    async fn execute(&self, job: &str) -> Result<serde_json::Value, ApiError> {
        match job {
            "purge_idempotency_keys" => self.purge_idempotency_keys().await,
            other => Err(ApiError::NotFound(format!("job {other}"))),
        }
    }

    async fn purge_idempotency_keys(&self) -> Result<serde_json::Value, ApiError> {
        let before = Timestamp(crate::clock::now().0 - IDEMPOTENCY_TTL_MS);
        let mut purged = 0u64;
        loop {
            let reply = self
                .submit(Command::PurgeIdempotency {
                    before,
                    max: PURGE_CHUNK,
                })
                .await;
            let v: serde_json::Value =
                serde_json::from_slice(&reply.body).map_err(ApiError::internal)?;
            if reply.status != 200 {
                return Err(ApiError::Internal(v.to_string()));
            }
            purged += v["purged"].as_u64().unwrap_or(0);
            if v["more"] != serde_json::Value::Bool(true) {
                break;
            }
        }
        Ok(serde_json::json!({ "purged": purged, "before": crate::clock::rfc3339(before) }))
    }

    /// The most recent recorded slot of `job`, if any.
    fn last_slot(&self, job: &str) -> store::Result<Option<Timestamp>> {
        let prefix = keys::scoped(table::CRON_RUN, job, &[]);
        Ok(self
            .store
            .last_in_prefix(&prefix)?
            .and_then(|(k, _)| keys::tail_u64(&k))
            .map(|ms| Timestamp(ms as i64)))
    }
}

/// Starts the scheduler and runs, once each, the slots missed while the service was down.
pub async fn start(
    runner: CronRunner,
    schedules: Vec<(String, String, Cron)>,
) -> anyhow::Result<JobScheduler> {
    let now = crate::clock::now();
    for (job, _, cron) in &schedules {
        let Some(slot) = latest_slot(cron, now) else {
            continue;
        };
        // A slot is missed if it falls after the last recorded run, or, for a job that never
        // ran, after the store's first audit entry (a brand-new store has missed nothing).
        let since = match runner.last_slot(job)? {
            Some(last) => Some(last),
            None => store::audit::get(&runner.store, 1)?
                .and_then(|e| crate::clock::parse_rfc3339(&e.at)),
        };
        if since.is_some_and(|s| s < slot) {
            tracing::info!(%job, slot = %crate::clock::rfc3339(slot), "running a slot missed while down");
            if let Err(e) = runner.run(job, slot, false).await {
                tracing::error!(%job, error = %e, "catch-up run failed");
            }
        }
    }
    let scheduler = JobScheduler::new().await?;
    for (job, expr, cron) in schedules {
        let runner = runner.clone();
        let cron = Arc::new(cron);
        let name = job.clone();
        let j = Job::new_async_tz(expr.as_str(), india(), move |_, _| {
            let runner = runner.clone();
            let cron = cron.clone();
            let job = name.clone();
            Box::pin(async move {
                // The scheduler fires at the slot, at most a little early or late: name the
                // slot, not the firing instant.
                let now = Timestamp(crate::clock::now().0 + 250);
                let Some(slot) = latest_slot(&cron, now) else {
                    return;
                };
                match runner.run(&job, slot, false).await {
                    Ok(Some(run)) => tracing::info!(%job, outcome = %run.outcome, "cron run"),
                    Ok(None) => tracing::debug!(%job, "slot already ran"),
                    Err(e) => tracing::error!(%job, error = %e, "cron run failed"),
                }
            })
        })?;
        scheduler.add(j).await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}
