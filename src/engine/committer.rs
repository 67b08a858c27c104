//! The single committer thread and its group commit loop.
//!
//! # Contract
//! A reply is sent only after the batch holding its command is applied, flushed and
//! fdatasync'ed. A command that fails with a store fault is rolled back alone; if the commit
//! itself fails, every command of the batch gets a 500 and the audit head is re-read from disk.
//!
//! # Pipeline
//! The committer thread executes batch N+1 while a second thread (`syncer`) applies, flushes
//! and syncs batch N and then answers N's commands. N+1 reads through N's sealed writes (see
//! `store::Txn`), so it sees everything N did. At most one batch is in flight: N+1 is handed
//! over only once N is durable, and if N's commit failed, N+1 (built on N) is refused whole.
//! A batch that changed the network is waited for before the next one executes, because
//! routing reads the network index that its commit updates.

use super::{exec, Envelope, Handle, Reply};
use crate::error::ApiError;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use store::audit::ChainHead;
use store::{Sealed, Store};
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

    /// When a batch is sealed: the earliest timer it armed (`i64::MAX` if none). Only the
    /// committer thread arms timers, so what it takes belongs to the batch it just executed.
    fn take_armed(&self) -> i64 {
        self.earliest_armed.swap(i64::MAX, Ordering::AcqRel)
    }

    /// After a batch is durable: wake the loop if it armed something due before the alarm.
    fn committed(&self, earliest: i64) {
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
    let ctx = Arc::new(ctx);
    let (flight_tx, flight_rx) = std::sync::mpsc::sync_channel::<Flight>(1);
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<bool>(1);
    let syncer_ctx = ctx.clone();
    std::thread::Builder::new()
        .name("syncer".into())
        .spawn(move || sync_loop(&syncer_ctx, flight_rx, done_tx))?;
    let pipe = Pipe {
        flights: flight_tx,
        done: done_rx,
        in_flight: false,
        base: None,
    };
    let thread = std::thread::Builder::new()
        .name("committer".into())
        .spawn(move || run(&ctx, rx, stop_rx, head, pipe))?;
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

/// An executed batch on its way to disk, and what to do once it is there.
struct Flight {
    batch: Sealed,
    replies: Vec<(tokio::sync::oneshot::Sender<Reply>, Reply)>,
    started: std::time::Instant,
    earliest_armed: i64,
    outbox_dirty: bool,
}

/// The committer's end of the pipeline to the syncer.
struct Pipe {
    flights: std::sync::mpsc::SyncSender<Flight>,
    /// One `true`/`false` (committed or refused) per flight, in order.
    done: std::sync::mpsc::Receiver<bool>,
    in_flight: bool,
    /// The last batch handed over: the next batch reads through it.
    base: Option<Sealed>,
}

impl Pipe {
    /// Waits for the batch in flight, if any; `false` if its commit failed.
    fn settle(&mut self) -> bool {
        if !std::mem::take(&mut self.in_flight) {
            return true;
        }
        self.done.recv().unwrap_or(false)
    }
}

/// The syncer thread: commits flights one at a time and answers their commands.
fn sync_loop(
    ctx: &EngineContext,
    flights: std::sync::mpsc::Receiver<Flight>,
    done: std::sync::mpsc::SyncSender<bool>,
) {
    while let Ok(flight) = flights.recv() {
        let ok = land(ctx, flight);
        if done.send(ok).is_err() {
            break;
        }
    }
}

/// Commits one flight, then answers its commands (a 500 each if the commit failed).
fn land(ctx: &EngineContext, flight: Flight) -> bool {
    match ctx.store.commit_sealed(&flight.batch) {
        Ok(stats) => {
            ctx.metrics
                .batch_commands
                .observe(flight.replies.len() as f64);
            ctx.metrics.flush_seconds.observe(stats.flush.as_secs_f64());
            ctx.metrics
                .fdatasync_seconds
                .observe(stats.fdatasync.as_secs_f64());
            ctx.metrics
                .commit_seconds
                .observe(flight.started.elapsed().as_secs_f64());
            ctx.timer_wake.committed(flight.earliest_armed);
            if flight.outbox_dirty {
                ctx.outbox_wake.notify_one();
            }
            for (tx, reply) in flight.replies {
                let _ = tx.send(reply);
            }
            true
        }
        Err(e @ store::Error::Unsynced(_)) => {
            // As PostgreSQL does on a failed fsync: the batch is visible in sled but maybe
            // not on disk, and a later fsync could make it durable after its callers were
            // told it failed. Stop; a restart recovers exactly what is on disk.
            tracing::error!(error = %e, "group commit could not be made durable; aborting");
            std::process::abort();
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; the batch is refused");
            for (tx, _) in flight.replies {
                let _ = tx.send(Reply::error(&ApiError::internal(&e), ""));
            }
            false
        }
    }
}

fn run(
    ctx: &EngineContext,
    mut rx: mpsc::Receiver<Envelope>,
    mut stop_rx: mpsc::Receiver<()>,
    mut head: ChainHead,
    mut pipe: Pipe,
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
        let flight = execute_batch(ctx, &mut head, std::mem::take(&mut batch), &pipe);
        if !pipe.settle() {
            // The batch this one was built on is not on disk: neither may this one be.
            refuse(ctx, &mut head, &mut pipe, flight);
            continue;
        }
        pipe.base = Some(flight.batch.clone());
        if pipe.flights.send(flight).is_err() {
            tracing::error!("the syncer thread is gone; stopping the committer");
            break;
        }
        pipe.in_flight = true;
        if network_written {
            // Durable and in the index now: the next batch reads it from the store.
            pipe.base = None;
            if !pipe.settle() {
                head = ChainHead::load(&ctx.store).unwrap_or(head);
            }
        }
        // Routing books today and later: older day counters need not stay in memory.
        let yesterday = workflows::Date::india_of(crate::clock::now()).0 - 1;
        if yesterday > counters_kept_from {
            ctx.store.forget_capacity_before(yesterday);
            counters_kept_from = yesterday;
        }
    }
    pipe.settle();
    if let Err(e) = ctx.store.sync() {
        tracing::error!(error = %e, "final store sync failed");
    }
    tracing::info!("committer stopped");
}

/// Answers a batch whose base failed to commit with a 500 each, and restarts from the disk.
fn refuse(ctx: &EngineContext, head: &mut ChainHead, pipe: &mut Pipe, flight: Flight) {
    tracing::error!(
        commands = flight.replies.len(),
        "refusing a batch executed on a batch that failed to commit"
    );
    for (tx, _) in flight.replies {
        let fault = ApiError::internal("the preceding group commit failed");
        let _ = tx.send(Reply::error(&fault, ""));
    }
    *head = ChainHead::load(&ctx.store).unwrap_or(*head);
    pipe.base = None;
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

/// Executes a batch on top of the one in flight and seals it.
fn execute_batch(
    ctx: &EngineContext,
    head: &mut ChainHead,
    batch: Vec<Envelope>,
    pipe: &Pipe,
) -> Flight {
    let started = std::time::Instant::now();
    let now = crate::clock::now();
    let mut txn = ctx.store.txn_after(pipe.base.clone());
    let mut replies: Vec<(tokio::sync::oneshot::Sender<Reply>, Reply)> =
        Vec::with_capacity(batch.len());
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
    Flight {
        batch: txn.seal(),
        replies,
        started,
        earliest_armed: ctx.timer_wake.take_armed(),
        outbox_dirty: ctx.outbox_dirty.swap(false, Ordering::AcqRel),
    }
}
