//! The timer loop: sleeps until the earliest durable timer is due (or a commit arms an earlier
//! one), then submits the due timers to the committer.
//!
//! # Contract
//! Due timers are read in key order (due time, then booking), at most `chunk` at a time, and
//! the loop waits for a chunk's replies before reading again: on start-up a backlog of overdue
//! timers drains oldest first in bounded chunks that interleave with API traffic in the
//! committer's queue. Firing is idempotent (the committer deletes the key in the transition's
//! batch and ignores a key that is gone), so a crash between read and commit is harmless.

use crate::auth::Principal;
use crate::engine::{Command, Handle, Request, TimerWake};
use std::sync::Arc;
use std::time::Duration;
use store::keys::{self, table};
use store::Store;
use tokio::sync::watch;

/// How long the loop sleeps at most, even with nothing armed (a safety net, not a mechanism).
const IDLE_SLEEP_MS: i64 = 30_000;

pub struct TimerLoop {
    pub store: Store,
    pub engine: Handle,
    pub wake: Arc<TimerWake>,
    /// Timers submitted per chunk at most.
    pub chunk: usize,
}

impl TimerLoop {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            // While scanning, any commit that arms a timer leaves a wake-up behind.
            self.wake.set_alarm(i64::MAX);
            let now = crate::clock::now().0;
            let (due, next_due) = match self.due_keys(now) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "timer index unreadable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !due.is_empty() {
                self.fire(due).await;
                continue;
            }
            let alarm = next_due.unwrap_or(i64::MAX).min(now + IDLE_SLEEP_MS);
            self.wake.set_alarm(alarm);
            let sleep = Duration::from_millis((alarm - now).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.woken() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("timer loop stopped");
    }

    /// Up to `chunk` keys due at `now`, and the due time of the first one not yet due.
    fn due_keys(&self, now: i64) -> store::Result<(Vec<Vec<u8>>, Option<i64>)> {
        let mut due = Vec::new();
        for item in self.store.scan_prefix(&[table::TIMER]) {
            let (k, _) = item?;
            let Some((due_ms, ..)) = keys::parse_timer(&k) else {
                continue;
            };
            if due_ms as i64 > now {
                return Ok((due, Some(due_ms as i64)));
            }
            due.push(k.to_vec());
            if due.len() >= self.chunk {
                break;
            }
        }
        Ok((due, None))
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
