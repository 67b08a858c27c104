//! The webhook dispatcher: sends due deliveries with Standard Webhooks signatures, reports
//! every attempt to the committer, and schedules retries with ±10 % jitter.
//!
//! # Contract
//! Due deliveries come from the `DELIVERY_DUE` index (first key = next due). A delivery in
//! flight is remembered in memory so it is not sent twice by this process; after a crash it is
//! simply sent again (at-least-once: `webhook-id` lets receivers de-duplicate). Per endpoint at
//! most `IN_FLIGHT_PER_ENDPOINT` requests run at once; deliveries of one booking to one endpoint
//! go one after another (only the oldest undelivered one of a chain is ever due).

use super::{Attempt, Delivery, DeliveryStatus, Endpoint, RESPONSE_SNIPPET_MAX};
use crate::auth::Principal;
use crate::engine::{AttemptOutcome, Command, Handle, Request};
use crate::metrics::Metrics;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::keys::{self, table};
use store::Store;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};

/// Requests in flight to one endpoint at most.
const IN_FLIGHT_PER_ENDPOINT: usize = 16;
/// Requests in flight in all at most.
const IN_FLIGHT_MAX: usize = 256;
/// Due deliveries read per look at the index.
const SCAN_MAX: usize = 512;
/// The longest the loop sleeps with nothing due.
const IDLE_SLEEP: Duration = Duration::from_secs(5);

pub struct Dispatcher {
    pub store: Store,
    pub engine: Handle,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
}

struct Shared {
    store: Store,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    client: reqwest::Client,
    retry_schedule: Vec<Duration>,
    in_flight: Mutex<HashSet<uuid::Uuid>>,
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    total: Arc<Semaphore>,
    outcomes: mpsc::Sender<Outcome>,
}

/// One attempt's result on its way to the recorder, with who to tell once it is committed.
type Outcome = (uuid::Uuid, Attempt, AttemptOutcome, oneshot::Sender<()>);

/// Outcomes committed in one command at most.
const OUTCOMES_PER_COMMAND: usize = 256;

/// Commits attempt outcomes in batches: one command (one audit entry per delivery inside)
/// for everything that arrived since the last commit, instead of one command each.
async fn record_outcomes(engine: Handle, mut rx: mpsc::Receiver<Outcome>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < OUTCOMES_PER_COMMAND {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut waiters = Vec::with_capacity(batch.len());
        let mut items = Vec::with_capacity(batch.len());
        for (id, attempt, outcome, done) in batch {
            items.push((id, attempt, outcome));
            waiters.push(done);
        }
        let reply = engine
            .submit(Request {
                principal: Principal::System("webhooks"),
                request_id: format!("webhook-{}", uuid::Uuid::now_v7()),
                idempotency: None,
                command: Command::RecordAttempts(items),
            })
            .await;
        if reply.status >= 500 {
            tracing::error!(
                count = waiters.len(),
                "could not record webhook attempts; they will be sent again"
            );
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

impl Dispatcher {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let client = match reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("DxStack-Webhooks/1")
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client cannot start; no deliveries");
                return;
            }
        };
        let (outcomes, outcomes_rx) = mpsc::channel(IN_FLIGHT_MAX * 2);
        let recorder = tokio::spawn(record_outcomes(self.engine.clone(), outcomes_rx));
        let shared = Arc::new(Shared {
            store: self.store,
            metrics: self.metrics,
            wake: self.wake,
            client,
            retry_schedule: self.retry_schedule,
            in_flight: Mutex::new(HashSet::new()),
            per_endpoint: Mutex::new(HashMap::new()),
            total: Arc::new(Semaphore::new(IN_FLIGHT_MAX)),
            outcomes,
        });
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = crate::clock::now().0;
            let (due, next) = match shared.due(now) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "outbox unreadable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for id in due {
                let Ok(permit) = shared.total.clone().acquire_owned().await else {
                    break;
                };
                let s = shared.clone();
                tokio::spawn(async move {
                    s.send(id).await;
                    if let Ok(mut set) = s.in_flight.lock() {
                        set.remove(&id);
                    }
                    drop(permit);
                    s.wake.notify_one();
                });
            }
            let sleep = next
                .map(|n| {
                    Duration::from_millis((n - now).clamp(0, IDLE_SLEEP.as_millis() as i64) as u64)
                })
                .unwrap_or(IDLE_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shared.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        // Let sends in flight report, then the recorder ends when the last sender is gone.
        let _ = shared.total.acquire_many(IN_FLIGHT_MAX as u32).await;
        drop(shared);
        let _ = recorder.await;
        tracing::info!("webhook dispatcher stopped");
    }
}

impl Shared {
    /// Due deliveries not already in flight, and when the next one falls due.
    fn due(&self, now: i64) -> store::Result<(Vec<uuid::Uuid>, Option<i64>)> {
        let mut out = Vec::new();
        let mut next = None;
        let mut depth = 0i64;
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return Ok((out, None));
        };
        for item in self.store.scan_prefix(&[table::DELIVERY_DUE]) {
            let (k, _) = item?;
            depth += 1;
            let (Some(due_ms), Some(raw)) = (
                k.get(1..9)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes),
                keys::tail_uuid(&k),
            ) else {
                continue;
            };
            if due_ms as i64 > now {
                next = Some(due_ms as i64);
                break;
            }
            let id = uuid::Uuid::from_bytes(raw);
            if in_flight.insert(id) {
                out.push(id);
            } else if next.is_none() {
                // Still in flight: look again when it reports.
            }
            if out.len() >= SCAN_MAX {
                next = Some(now);
                break;
            }
        }
        self.metrics.outbox_depth.set(depth);
        Ok((out, next))
    }

    fn endpoint_gate(&self, endpoint: &str) -> Arc<Semaphore> {
        match self.per_endpoint.lock() {
            Ok(mut map) => map
                .entry(endpoint.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(IN_FLIGHT_PER_ENDPOINT)))
                .clone(),
            Err(_) => Arc::new(Semaphore::new(IN_FLIGHT_PER_ENDPOINT)),
        }
    }

    async fn send(&self, id: uuid::Uuid) {
        let Ok(Some(d)) = self
            .store
            .get::<Delivery>(&keys::one(table::DELIVERY, id.as_bytes()))
        else {
            return;
        };
        if d.status != DeliveryStatus::Pending {
            return;
        }
        let gate = self.endpoint_gate(&d.endpoint_id);
        let Ok(permit) = gate.acquire().await else {
            return;
        };
        let endpoint: Option<Endpoint> = self
            .store
            .get(&crate::engine_endpoint_key(&d.partner_id, &d.endpoint_id))
            .ok()
            .flatten();
        let now = crate::clock::now();
        let started = Instant::now();
        let (attempt, outcome) = match endpoint {
            None => (
                Attempt {
                    at: now,
                    status_code: None,
                    latency_ms: 0,
                    error: Some("the endpoint was deleted".into()),
                    response: String::new(),
                },
                AttemptOutcome::Failed {
                    retry_after_ms: None,
                },
            ),
            Some(ep) if ep.disabled.is_some() => (
                Attempt {
                    at: now,
                    status_code: None,
                    latency_ms: 0,
                    error: ep.disabled.clone(),
                    response: String::new(),
                },
                AttemptOutcome::Failed {
                    retry_after_ms: None,
                },
            ),
            Some(ep) => self.post(&ep, &d, now, started).await,
        };
        // The endpoint's slot bounds requests to it, not commits: free it before waiting for
        // the outcome to be durable (the chain's next delivery is due only after that commit).
        drop(permit);
        self.metrics.webhook_attempts.inc();
        // Outcomes are committed in batches by the recorder task; wait until ours is durable,
        // so the delivery leaves the in-flight set only once its new state is visible.
        let (done, committed) = oneshot::channel();
        if self
            .outcomes
            .send((id, attempt, outcome, done))
            .await
            .is_err()
        {
            return;
        }
        let _ = committed.await;
    }

    async fn post(
        &self,
        ep: &Endpoint,
        d: &Delivery,
        now: workflows::Timestamp,
        started: Instant,
    ) -> (Attempt, AttemptOutcome) {
        let msg_id = format!("msg_{}", d.id.simple());
        let ts = now.0 / 1000;
        let signatures: Vec<String> = ep
            .signing_secrets(now)
            .filter_map(|s| super::sign(s, &msg_id, ts, &d.body))
            .collect();
        let result = self
            .client
            .post(&ep.url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(d.body.clone())
            .send()
            .await;
        let attempt_no = d.attempts.len() + 1;
        let retry = || AttemptOutcome::Failed {
            retry_after_ms: self.retry_after(attempt_no),
        };
        match result {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let snippet: String = text.chars().take(RESPONSE_SNIPPET_MAX).collect();
                let attempt = Attempt {
                    at: now,
                    status_code: Some(code),
                    latency_ms: started.elapsed().as_millis() as u64,
                    error: None,
                    response: snippet,
                };
                let outcome = match code {
                    200..=299 => AttemptOutcome::Delivered,
                    410 => AttemptOutcome::Gone,
                    _ => retry(),
                };
                (attempt, outcome)
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection error"
                } else {
                    "request error"
                };
                let attempt = Attempt {
                    at: now,
                    status_code: None,
                    latency_ms: started.elapsed().as_millis() as u64,
                    error: Some(format!("{kind}: {e}")),
                    response: String::new(),
                };
                (attempt, retry())
            }
        }
    }

    /// The wait before attempt `n + 1` after attempt `n` failed: the schedule's n-th step
    /// ±10 %, or `None` when the schedule is used up.
    fn retry_after(&self, attempt_no: usize) -> Option<i64> {
        let step = self.retry_schedule.get(attempt_no - 1)?;
        let base = step.as_millis() as f64;
        let jitter = rand::thread_rng().gen_range(-0.1..=0.1);
        Some((base * (1.0 + jitter)).round() as i64)
    }
}
