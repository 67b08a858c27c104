//! Prometheus metrics: one registry, created once, rendered by `GET /metrics`.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

/// Buckets of the latencies that have targets around 0.1–1 s (timer lateness, webhook commit to
/// delivery): fine there, so a p99 read from the histogram is within ~10 % of the real one,
/// and coarse up to an hour (a restart after a long stop fires timers that late).
const SLA_LATENCY_BUCKETS: [f64; 38] = [
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.035, 0.05, 0.06, 0.075, 0.09, 0.1, 0.125, 0.15,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0,
    10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

pub struct Metrics {
    registry: Registry,
    /// Commands by kind and outcome (`accepted`, `rejected`, `replayed`, `failed`).
    pub commands: IntCounterVec,
    pub batch_commands: Histogram,
    pub commit_seconds: Histogram,
    pub flush_seconds: Histogram,
    pub fdatasync_seconds: Histogram,
    pub events: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub queue_depth: IntGauge,
    /// Fired − due, for every timer that fired.
    pub timer_lateness_seconds: Histogram,
    pub timers_armed: IntCounter,
    /// SLA entries reaching a state, by kind and state.
    pub sla_outcomes: IntCounterVec,
    /// Cron runs by job and outcome.
    pub cron_runs: IntCounterVec,
    /// Webhook delivery attempts by outcome (`delivered`, `retrying`, `dead`).
    pub webhook_deliveries: IntCounterVec,
    pub webhook_attempts: IntCounter,
    /// Commit of the event → its successful delivery.
    pub webhook_commit_to_delivery_seconds: Histogram,
    /// Deliveries due or waiting to be sent.
    pub outbox_depth: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let latency = || exponential_buckets(0.000_025, 2.0, 18).unwrap_or_default();
        let commands = IntCounterVec::new(
            Opts::new(
                "dxstack_commands_total",
                "Commands handled by the committer",
            ),
            &["kind", "outcome"],
        );
        let batch_commands = Histogram::with_opts(
            HistogramOpts::new("dxstack_batch_commands", "Commands per group commit")
                .buckets(exponential_buckets(1.0, 2.0, 11).unwrap_or_default()),
        );
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dxstack_commit_seconds",
                "Group commit time: apply + flush + fdatasync",
            )
            .buckets(latency()),
        );
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new("dxstack_flush_seconds", "sled flush per group commit")
                .buckets(latency()),
        );
        let fdatasync_seconds = Histogram::with_opts(
            HistogramOpts::new("dxstack_fdatasync_seconds", "fdatasync per group commit")
                .buckets(latency()),
        );
        let events = IntCounterVec::new(
            Opts::new("dxstack_events_total", "Partner events committed, by type"),
            &["type"],
        );
        let http_requests = IntCounterVec::new(
            Opts::new(
                "dxstack_http_requests_total",
                "HTTP responses by status class",
            ),
            &["status"],
        );
        let queue_depth = IntGauge::new(
            "dxstack_committer_queue_depth",
            "Commands waiting for the committer",
        );
        let timer_lateness_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dxstack_timer_lateness_seconds",
                "How late durable timers fire (fired - due)",
            )
            .buckets(SLA_LATENCY_BUCKETS.to_vec()),
        );
        let timers_armed = IntCounter::new("dxstack_timers_armed_total", "Durable timers armed");
        let sla_outcomes = IntCounterVec::new(
            Opts::new("dxstack_sla_outcomes_total", "SLA entries reaching a state"),
            &["kind", "state"],
        );
        let cron_runs = IntCounterVec::new(
            Opts::new("dxstack_cron_runs_total", "Cron job runs by outcome"),
            &["job", "outcome"],
        );
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "dxstack_webhook_deliveries_total",
                "Webhook attempt outcomes",
            ),
            &["outcome"],
        );
        let webhook_attempts =
            IntCounter::new("dxstack_webhook_attempts_total", "Webhook HTTP attempts");
        let webhook_commit_to_delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dxstack_webhook_commit_to_delivery_seconds",
                "From the commit of an event to its successful delivery",
            )
            .buckets(SLA_LATENCY_BUCKETS.to_vec()),
        );
        let outbox_depth = IntGauge::new(
            "dxstack_outbox_depth",
            "Webhook deliveries due (scheduled) at the dispatcher's last look",
        );
        let m = Metrics {
            registry,
            commands: commands.unwrap_or_else(|_| unreachable_metric()),
            batch_commands: batch_commands.unwrap_or_else(|_| unreachable_metric()),
            commit_seconds: commit_seconds.unwrap_or_else(|_| unreachable_metric()),
            flush_seconds: flush_seconds.unwrap_or_else(|_| unreachable_metric()),
            fdatasync_seconds: fdatasync_seconds.unwrap_or_else(|_| unreachable_metric()),
            events: events.unwrap_or_else(|_| unreachable_metric()),
            http_requests: http_requests.unwrap_or_else(|_| unreachable_metric()),
            queue_depth: queue_depth.unwrap_or_else(|_| unreachable_metric()),
            timer_lateness_seconds: timer_lateness_seconds.unwrap_or_else(|_| unreachable_metric()),
            timers_armed: timers_armed.unwrap_or_else(|_| unreachable_metric()),
            sla_outcomes: sla_outcomes.unwrap_or_else(|_| unreachable_metric()),
            cron_runs: cron_runs.unwrap_or_else(|_| unreachable_metric()),
            webhook_deliveries: webhook_deliveries.unwrap_or_else(|_| unreachable_metric()),
            webhook_attempts: webhook_attempts.unwrap_or_else(|_| unreachable_metric()),
            webhook_commit_to_delivery_seconds: webhook_commit_to_delivery_seconds
                .unwrap_or_else(|_| unreachable_metric()),
            outbox_depth: outbox_depth.unwrap_or_else(|_| unreachable_metric()),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.commands.clone()),
            Box::new(m.batch_commands.clone()),
            Box::new(m.commit_seconds.clone()),
            Box::new(m.flush_seconds.clone()),
            Box::new(m.fdatasync_seconds.clone()),
            Box::new(m.events.clone()),
            Box::new(m.http_requests.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.timer_lateness_seconds.clone()),
            Box::new(m.timers_armed.clone()),
            Box::new(m.sla_outcomes.clone()),
            Box::new(m.cron_runs.clone()),
            Box::new(m.webhook_deliveries.clone()),
            Box::new(m.webhook_attempts.clone()),
            Box::new(m.webhook_commit_to_delivery_seconds.clone()),
            Box::new(m.outbox_depth.clone()),
        ];
        for c in collectors {
            if let Err(e) = m.registry.register(c) {
                panic!("metric registration is static and cannot clash: {e}");
            }
        }
        m
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Metric definitions are constants; a failure to build one is a programming error.
fn unreachable_metric<T>() -> T {
    panic!("static metric definition rejected by prometheus")
}
