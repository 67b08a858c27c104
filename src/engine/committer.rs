//! The single committer thread and its group commit loop.
//!
//! # Contract
//! A reply is sent only after the batch holding its command is applied, flushed and
//! fdatasync'ed. A command that fails with a store fault is rolled back alone; if the commit
//! itself fails, every command of the batch gets a 500 and the audit head is re-read from disk.

use super::{exec, Envelope, Handle, Reply};
use crate::error::ApiError;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use store::audit::ChainHead;
use store::Store;
use tokio::sync::mpsc;
use workflows::booking::SlaRules;

/// Wakes the timer loop when a commit armed a timer earlier than the one it sleeps for.
pub struct TimerWake {
    notify: tokio::sync::Notify,
    earliest_armed: AtomicI64,
    sleeping_until: AtomicI64,
}

impl Default for TimerWake {
    fn default() -> Self {
        TimerWake {
            notify: tokio::sync::Notify::new(),
            earliest_armed: AtomicI64::new(i64::MAX),
            sleeping_until: AtomicI64::new(i64::MAX),
        }
    }
}

impl TimerWake {
    /// Notes a timer armed in the batch being built.
    pub fn armed(&self, due_ms: i64) {
        self.earliest_armed.fetch_min(due_ms, Ordering::AcqRel);
    }

    /// After a commit: wake the loop if something now falls due before its alarm.
    fn committed(&self) {
        let earliest = self.earliest_armed.swap(i64::MAX, Ordering::AcqRel);
        if earliest < self.sleeping_until.load(Ordering::Acquire) {
            self.notify.notify_one();
        }
    }

    /// The loop announces its next alarm (`i64::MAX` while it is scanning).
    pub fn set_alarm(&self, due_ms: i64) {
        self.sleeping_until.store(due_ms, Ordering::Release);
    }

    /// Resolves when a commit armed an earlier timer (a notification is kept if none waits).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

/// What the committer needs besides the store.
pub struct EngineContext {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub sla: SlaRules,
    pub weights: workflows::routing::Weights,
    pub queue_capacity: usize,
    pub batch_commands_max: usize,
    pub timer_wake: Arc<TimerWake>,
    /// Wakes the webhook dispatcher after a batch that wrote due deliveries is committed
    /// (waking it earlier would let it look before the rows are visible, then sleep).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    pub outbox_dirty: std::sync::atomic::AtomicBool,
    /// `[exceptions] ack_within`: an open case not acknowledged by then escalates itself.
    pub ack_within: workflows::Millis,
    /// `[engine] audit` (benchmarks only turn it off).
    pub audit: bool,
}

enum Msg {
    Request(Box<Envelope>),
    Stop,
}

/// Starts the committer. Dropping every [`Handle`] or calling [`Stopper::stop`] ends it after
/// the batch in flight; the thread syncs the store before it exits.
pub fn spawn(ctx: EngineContext) -> anyhow::Result<(Handle, Stopper)> {
    let (tx, rx) = mpsc::channel::<Envelope>(ctx.queue_capacity);
    let (stop_tx, stop_rx) = mpsc::channel::<()>(1);
    let head = ChainHead::load(&ctx.store)?;
    let thread = std::thread::Builder::new()
        .name("committer".into())
        .spawn(move || run(ctx, rx, stop_rx, head))?;
    Ok((Handle { tx }, Stopper { stop_tx, thread }))
}

/// Stops the committer gracefully.
pub struct Stopper {
    stop_tx: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Stopper {
    /// Finishes queued commands, syncs the store and joins the thread.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(()).await;
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

fn run(
    ctx: EngineContext,
    mut rx: mpsc::Receiver<Envelope>,
    mut stop_rx: mpsc::Receiver<()>,
    mut head: ChainHead,
) {
    let mut batch: Vec<Envelope> = Vec::with_capacity(ctx.batch_commands_max);
    // A command held back to start the next batch (see `writes_network`).
    let mut carry: Option<Envelope> = None;
    let mut stopping = false;
    let mut counters_kept_from = i32::MIN;
    // A runtime-free thread waits on two tokio channels through one tiny current-thread runtime.
    let waiter = tokio::runtime::Builder::new_current_thread().build().ok();
    loop {
        batch.extend(carry.take());
        if batch.is_empty() && !stopping {
            // Block for the first command or a stop request, whichever comes first.
            match next_message(waiter.as_ref(), &mut rx, &mut stop_rx) {
                Some(Msg::Request(env)) => batch.push(*env),
                Some(Msg::Stop) | None => stopping = true,
            }
        }
        let mut network_written = batch.iter().any(|e| writes_network(&e.request.command));
        while batch.len() < ctx.batch_commands_max {
            match rx.try_recv() {
                Ok(env) => {
                    let writes = writes_network(&env.request.command);
                    if network_written && !writes {
                        carry = Some(env);
                        break;
                    }
                    network_written |= writes;
                    batch.push(env);
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if stopping {
                break;
            }
            continue;
        }
        ctx.metrics.queue_depth.set(rx.len() as i64);
        commit_batch(&ctx, &mut head, std::mem::take(&mut batch));
        // Routing books today and later: older day counters need not stay in memory.
        let yesterday = workflows::Date::india_of(crate::clock::now()).0 - 1;
        if yesterday > counters_kept_from {
            ctx.store.forget_capacity_before(yesterday);
            counters_kept_from = yesterday;
        }
    }
    if let Err(e) = ctx.store.sync() {
        tracing::error!(error = %e, "final store sync failed");
    }
    tracing::info!("committer stopped");
}

/// Whether a command changes the provider network. Routing reads the network from the store's
/// in-memory index, which moves only at commit, so no other command may follow such a command
/// in the same batch: it would route on the network as it was before the batch.
fn writes_network(command: &super::Command) -> bool {
    matches!(command, super::Command::PutProvider(_))
}

/// Waits for a request or a stop, whichever comes first.
fn next_message(
    waiter: Option<&tokio::runtime::Runtime>,
    rx: &mut mpsc::Receiver<Envelope>,
    stop_rx: &mut mpsc::Receiver<()>,
) -> Option<Msg> {
    let Some(rt) = waiter else {
        return rx.blocking_recv().map(|e| Msg::Request(Box::new(e)));
    };
    rt.block_on(async {
        tokio::select! {
            biased;
            env = rx.recv() => env.map(|e| Msg::Request(Box::new(e))),
            _ = stop_rx.recv() => Some(Msg::Stop),
        }
    })
}

fn commit_batch(ctx: &EngineContext, head: &mut ChainHead, batch: Vec<Envelope>) {
    let started = std::time::Instant::now();
    let now = crate::clock::now();
    let mut txn = ctx.store.txn();
    let mut replies: Vec<(tokio::sync::oneshot::Sender<Reply>, Reply)> =
        Vec::with_capacity(batch.len());
    let size = batch.len();
    for env in batch {
        let savepoint = txn.savepoint();
        let head_before = *head;
        let reply = match exec::execute(ctx, &mut txn, head, &env.request, now) {
            Ok(reply) => reply,
            Err(fault) => {
                tracing::error!(request_id = %env.request.request_id, error = %fault, "command failed");
                txn.rollback_to(savepoint);
                *head = head_before;
                ctx.metrics
                    .commands
                    .with_label_values(&[exec::kind_of(&env.request.command), "failed"])
                    .inc();
                Reply::error(&ApiError::internal(fault), &env.request.request_id)
            }
        };
        replies.push((env.reply, reply));
    }
    match ctx.store.commit(txn) {
        Ok(stats) => {
            ctx.metrics.batch_commands.observe(size as f64);
            ctx.metrics.flush_seconds.observe(stats.flush.as_secs_f64());
            ctx.metrics
                .fdatasync_seconds
                .observe(stats.fdatasync.as_secs_f64());
            ctx.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            ctx.timer_wake.committed();
            if ctx.outbox_dirty.swap(false, Ordering::AcqRel) {
                ctx.outbox_wake.notify_one();
            }
            for (tx, reply) in replies {
                let _ = tx.send(reply);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; the batch is refused");
            *head = ChainHead::load(&ctx.store).unwrap_or(*head);
            for (tx, _) in replies {
                let _ = tx.send(Reply::error(&ApiError::internal(&e), ""));
            }
        }
    }
}
