//! The timer loop: sleeps until the earliest durable timer is due (or a commit arms an earlier
//! one), then submits the due timers to the committer.
//!
//! # Contract
//! Due timers are read in key order (due time, then booking), at most `chunk` at a time, and
//! at most two chunks are in the committer's queue at once (keys in flight are skipped when
//! reading again): on start-up a backlog of overdue timers drains oldest first in bounded
//! chunks that interleave with API traffic in the committer's queue. Firing is idempotent (the committer deletes the key in the transition's
//! batch and ignores a key that is gone), so a crash between read and commit is harmless.

use crate::auth::Principal;
use crate::engine::{Command, Handle, Request, TimerWake};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::keys::{self, table};
use store::Store;
use tokio::sync::{watch, Notify, Semaphore};

/// How long the loop sleeps at most, even with nothing armed (a safety net, not a mechanism).
const IDLE_SLEEP_MS: i64 = 30_000;

pub struct TimerLoop {
    pub store: Store,
    pub engine: Handle,
    pub wake: Arc<TimerWake>,
    /// Timers submitted per chunk at most.
    pub chunk: usize,
}

/// Chunks of due timers in the committer's queue at once: two keep it busy while the loop
/// reads the next chunk, and bound how much API traffic can queue behind a backlog.
const CHUNKS_IN_FLIGHT: usize = 2;

impl TimerLoop {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let gate = Arc::new(Semaphore::new(CHUNKS_IN_FLIGHT));
        let in_flight: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
        let chunk_done = Arc::new(Notify::new());
        loop {
            if *shutdown.borrow() {
                break;
            }
            // While scanning, any commit that arms a timer leaves a wake-up behind.
            this.wake.set_alarm(i64::MAX);
            let now = crate::clock::now().0;
            let (due, next_due, busy) = match this.due_keys(now, &in_flight) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "timer index unreadable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !due.is_empty() {
                let Ok(permit) = gate.clone().acquire_owned().await else {
                    break;
                };
                if let Ok(mut set) = in_flight.lock() {
                    set.extend(due.iter().cloned());
                }
                let (this, in_flight, chunk_done) =
                    (this.clone(), in_flight.clone(), chunk_done.clone());
                tokio::spawn(async move {
                    let keys = due.clone();
                    this.fire(due).await;
                    if let Ok(mut set) = in_flight.lock() {
                        for k in &keys {
                            set.remove(k);
                        }
                    }
                    drop(permit);
                    chunk_done.notify_one();
                });
                continue;
            }
            let alarm = next_due.unwrap_or(i64::MAX).min(now + IDLE_SLEEP_MS);
            this.wake.set_alarm(alarm);
            let sleep = Duration::from_millis((alarm - now).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = this.wake.woken() => {}
                _ = chunk_done.notified(), if busy => {}
                _ = shutdown.changed() => {}
            }
        }
        // Let the chunks in flight finish before the committer stops.
        let _ = gate.acquire_many(CHUNKS_IN_FLIGHT as u32).await;
        tracing::info!("timer loop stopped");
    }

    /// Up to `chunk` due keys not already in flight, the due time of the first key not yet
    /// due, and whether due keys are still in flight.
    fn due_keys(
        &self,
        now: i64,
        in_flight: &Mutex<HashSet<Vec<u8>>>,
    ) -> store::Result<(Vec<Vec<u8>>, Option<i64>, bool)> {
        let mut due = Vec::new();
        let mut busy = false;
        let Ok(flying) = in_flight.lock() else {
            return Ok((due, None, false));
        };
        for item in self.store.scan_prefix(&[table::TIMER]) {
            let (k, _) = item?;
            let Some((due_ms, ..)) = keys::parse_timer(&k) else {
                continue;
            };
            if due_ms as i64 > now {
                return Ok((due, Some(due_ms as i64), busy));
            }
            if flying.contains(k.as_ref()) {
                busy = true;
                continue;
            }
            due.push(k.to_vec());
            if due.len() >= self.chunk {
                break;
            }
        }
        Ok((due, None, busy))
    }

    async fn fire(&self, keys: Vec<Vec<u8>>) {
        let submissions = keys.into_iter().map(|key| {
            self.engine.submit(Request {
                principal: Principal::System("timer"),
                request_id: format!("timer-{}", uuid::Uuid::now_v7()),
                idempotency: None,
                command: Command::FireTimer { key },
            })
        });
        for reply in futures::future::join_all(submissions).await {
            if reply.status >= 500 {
                tracing::error!(
                    status = reply.status,
                    "a timer failed to fire; it stays armed"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
