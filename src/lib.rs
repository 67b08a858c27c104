//! DxStack: a governed orchestration layer between partners and a provider network.
//!
//! [`run`] wires the store, the committer, the HTTP façade and the demo loader; `main.rs` only
//! parses the command line and calls it, and the tests drive the same entry point.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod cron;
pub mod demo;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod queries;
pub mod timers;
pub mod views;
pub mod webhooks;

/// The store key of a partner's webhook endpoint (shared by the engine and the dispatcher).
pub fn engine_endpoint_key(partner: &workflows::PartnerId, id: &str) -> Vec<u8> {
    store::keys::scoped(
        store::keys::table::WEBHOOK_ENDPOINT,
        partner.as_str(),
        id.as_bytes(),
    )
}

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store::keys::table;
use store::{Store, StoreConfig};
use tokio::net::TcpListener;

/// Opens the store configured in `config`.
pub fn open_store(config: &config::Config) -> anyhow::Result<Store> {
    Store::open(&StoreConfig {
        path: config.store.path.clone(),
        cache_capacity_bytes: config.store.cache_capacity.0,
    })
    .map_err(|e| anyhow::anyhow!("cannot open store {}: {e}", config.store.path.display()))
}

/// Runs the service on `listener` until `shutdown` resolves, then stops gracefully: no new
/// requests, in-flight ones finish, the committer commits what it has, the store is synced.
pub async fn run(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let schedules = cron::schedules(&config.cron)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let timer_wake = Arc::new(engine::TimerWake::default());
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    let (engine, stopper) = engine::spawn(engine::EngineContext {
        store: store.clone(),
        metrics: metrics.clone(),
        sla: workflows::booking::SlaRules {
            at_risk_ratio: config.sla.at_risk_ratio,
            reroute_on_acceptance_breach: config.sla.reroute_on_acceptance_breach,
        },
        weights: config.routing.weights.into(),
        queue_capacity: config.engine.queue_capacity,
        batch_commands_max: config.engine.batch_commands_max,
        timer_wake: timer_wake.clone(),
        outbox_wake: outbox_wake.clone(),
        outbox_dirty: std::sync::atomic::AtomicBool::new(false),
        ack_within: workflows::Millis(config.exceptions.ack_within.0.as_millis() as i64),
        audit: config.engine.audit,
    })?;
    let cron_runner = cron::CronRunner {
        store: store.clone(),
        engine: engine.clone(),
        metrics: metrics.clone(),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let state_metrics = metrics.clone();
    let state = api::AppState {
        store: store.clone(),
        engine: engine.clone(),
        metrics,
        cron: cron_runner.clone(),
        admin_token: Arc::new(config.admin.token.clone()),
        max_body: config.server.max_body.0 as usize,
        max_upload: config.server.max_upload.0 as usize,
        weights: config.routing.weights.into(),
        limiter: api::rate_limiter(config.limits.requests_per_second, config.limits.burst),
        allow_http_hosts: Arc::new(config.webhooks.allow_http_hosts.clone()),
        ready: ready.clone(),
    };
    let empty = store.scan_prefix(&[table::PARTNER]).next().is_none();
    let demo_keys = if config.demo.load_on_empty_store && empty {
        Some(demo::load(&engine).await?)
    } else {
        None
    };
    // Timers first: overdue ones fire at once, in bounded chunks, alongside API traffic.
    let (stop_timers, timers_stopped) = tokio::sync::watch::channel(false);
    let timer_loop = tokio::spawn(
        timers::TimerLoop {
            store: store.clone(),
            engine: engine.clone(),
            wake: timer_wake,
            chunk: config.engine.timer_chunk_max,
        }
        .run(timers_stopped),
    );
    let dispatcher = tokio::spawn(
        webhooks::dispatcher::Dispatcher {
            store: store.clone(),
            engine: engine.clone(),
            metrics: state_metrics.clone(),
            wake: outbox_wake,
            retry_schedule: config.webhooks.retry_schedule.iter().map(|d| d.0).collect(),
            timeout: config.webhooks.timeout.0,
        }
        .run(stop_timers.subscribe()),
    );
    let mut scheduler = cron::start(cron_runner, schedules).await?;
    let addr = listener.local_addr()?;
    ready.store(true, Ordering::Release);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "dxstack listening on http://{addr}")?;
        if let Some(keys) = &demo_keys {
            writeln!(out, "{}", keys.describe(&addr.to_string()))?;
        }
        out.flush()?;
    }
    tracing::info!(%addr, store = %config.store.path.display(), "serving");
    let router = api::router(state);
    let ready_flag = ready.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready_flag.store(false, Ordering::Release);
            tracing::info!("shutting down: no new requests, finishing in-flight ones");
        })
        .await?;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "cron scheduler did not stop cleanly");
    }
    let _ = stop_timers.send(true);
    let _ = timer_loop.await;
    let _ = dispatcher.await;
    drop(engine);
    stopper.stop().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
