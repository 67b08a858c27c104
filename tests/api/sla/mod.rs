//! SLA timers and the cron runner, black-box: seconds-long SLAs set through the admin API,
//! observed by polling with deadlines against the server's own timestamps.
//!
//! - [`acceptance`]: at-risk then breach on time, met and cancelled entries never breach,
//!   re-routing on an acceptance breach (and not, when switched off).
//! - [`fulfilment`]: the fulfilment window (slot end + grace) and the report window
//!   (start + the longest catalog `report_tat`).
//! - [`crash`]: 450 armed timers survive SIGKILL and fire exactly once after restart.
//! - [`cron`]: scheduled and manual runs of `purge_idempotency_keys`, bad `[cron]` config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{str_of, TestApp, World, BLR_FULL};

mod acceptance;
mod crash;
mod cron;
mod fulfilment;

/// Extra config that switches re-routing on an acceptance breach off.
pub(crate) const NO_REROUTE: &str = "[sla]\nreroute_on_acceptance_breach = false\n";

/// How late (ms) a timer may fire and still count as "on time".
pub(crate) const ON_TIME_MS: i64 = 1_000;

pub(crate) use crate::harness::{assert_within, ms, now_ms, rfc3339, sleep_until_ms};

/// A server with `extra_toml`, the standard world, and both `blr-lab-*` providers (the only
/// candidates of a CBC + LIPID booking at 560001) given these SLA terms.
pub(crate) async fn sla_world(
    extra_toml: &str,
    accept_within: &str,
    fulfil_grace: &str,
) -> (TestApp, World) {
    let app = TestApp::spawn_with(extra_toml).await;
    let w = World::build(&app).await;
    set_sla(&app, accept_within, fulfil_grace).await;
    (app, w)
}

/// Gives both `blr-lab-*` providers these SLA terms.
pub(crate) async fn set_sla(app: &TestApp, accept_within: &str, fulfil_grace: &str) {
    for id in BLR_FULL {
        World::reconfigure_provider(app, id, |b| {
            b["sla"] = json!({"accept_within": accept_within, "fulfil_grace": fulfil_grace});
        })
        .await;
    }
}

/// The booking's SLA entries of `kind`, oldest first.
pub(crate) fn entries<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
    b["sla"]
        .as_array()
        .unwrap_or_else(|| panic!("booking without an `sla` array: {b}"))
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// The booking's single SLA entry of `kind` (panics if there are none or several).
#[track_caller]
pub(crate) fn only_entry<'a>(b: &'a Value, kind: &str) -> &'a Value {
    let es = entries(b, kind);
    assert_eq!(
        es.len(),
        1,
        "expected exactly one {kind} SLA entry; booking sla = {}",
        b["sla"]
    );
    es[0]
}

/// The state of the last SLA entry of `kind` (`"<none>"` if there is none).
pub(crate) fn last_state(b: &Value, kind: &str) -> String {
    entries(b, kind)
        .last()
        .and_then(|e| e["state"].as_str())
        .unwrap_or("<none>")
        .to_string()
}

/// The `type`s of the booking's exception cases.
pub(crate) fn case_types(b: &Value) -> Vec<String> {
    b["exceptions"]
        .as_array()
        .unwrap_or_else(|| panic!("booking without an `exceptions` array: {b}"))
        .iter()
        .map(|c| str_of(&c["type"]))
        .collect()
}

/// How many of the booking's exception cases have this type.
pub(crate) fn cases_of(b: &Value, case_type: &str) -> usize {
    case_types(b).iter().filter(|t| *t == case_type).count()
}

/// The booking's timeline entries, oldest first; asserts `seq` strictly increases.
pub(crate) async fn timeline_items(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let items = app.timeline(key, id).await.ok(200)["items"]
        .as_array()
        .unwrap_or_else(|| panic!("timeline of {id} without items"))
        .clone();
    let seqs: Vec<u64> = items
        .iter()
        .map(|e| {
            e["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("entry without seq: {e}"))
        })
        .collect();
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "timeline of {id} is not oldest first: seqs {seqs:?}"
    );
    items
}

/// The timeline's `sla.*` entries.
pub(crate) fn sla_audit(items: &[Value]) -> Vec<&Value> {
    items
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("sla.")))
        .collect()
}

/// The actions of a list of timeline entries.
pub(crate) fn actions(items: &[&Value]) -> Vec<String> {
    items.iter().map(|e| str_of(&e["action"])).collect()
}

/// A compact rendering of a timeline for failure messages.
pub(crate) fn render(items: &[Value]) -> String {
    items
        .iter()
        .map(|e| {
            format!(
                "#{} {} {} by {}/{} {}→{}",
                e["seq"],
                e["at"].as_str().unwrap_or("?"),
                e["action"].as_str().unwrap_or("?"),
                e["actor"]["kind"].as_str().unwrap_or("?"),
                e["actor"]["id"].as_str().unwrap_or("?"),
                e["from_state"].as_str().unwrap_or("-"),
                e["to_state"].as_str().unwrap_or("-"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts an audit entry was written by the timer: actor `{kind: system, id: timer}`.
#[track_caller]
pub(crate) fn assert_by_timer(e: &Value) {
    assert_eq!(
        (e["actor"]["kind"].as_str(), e["actor"]["id"].as_str()),
        (Some("system"), Some("timer")),
        "SLA audit entry not by system/timer: {e}"
    );
}

/// Polls the booking every 25 ms until `done` holds; returns the view and the wall-clock time
/// (ms) of the response in which it first held. Panics after `deadline` with the last view.
pub(crate) async fn wait_booking(
    app: &TestApp,
    key: &str,
    id: &str,
    what: &str,
    deadline: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, i64) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let b = app.get_booking(key, id).await.ok(200);
        let seen = now_ms();
        if done(&b) {
            return (b, seen);
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what} (now {}); last view: {b}",
            rfc3339(now_ms())
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The sum of the samples of metric `name` whose labels include `labels` (0 if none).
pub(crate) async fn metric(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status, 200, "GET /metrics: {} {}", r.status, r.text());
    metric_in(&r.text(), name, labels)
}

/// Parses Prometheus text: the sum of `name`'s samples carrying at least `labels`.
pub(crate) fn metric_in(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.trim().rsplit_once(' ') else {
            continue;
        };
        let (n, raw) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let have: BTreeMap<&str, &str> = raw
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        if labels.iter().all(|(k, v)| have.get(k) == Some(v)) {
            total += value
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("metric line {line:?}: {e}"));
        }
    }
    total
}

#[test]
fn metric_parser_sums_matching_series() {
    let text = "# HELP x y\n# TYPE x counter\n\
                x{kind=\"acceptance\",state=\"breached\"} 3\n\
                x{kind=\"report\",state=\"breached\"} 2\n\
                x{kind=\"acceptance\",state=\"met\"} 5\n\
                y 7\n";
    assert_eq!(metric_in(text, "x", &[("state", "breached")]), 5.0);
    assert_eq!(
        metric_in(text, "x", &[("kind", "acceptance"), ("state", "met")]),
        5.0
    );
    assert_eq!(metric_in(text, "y", &[]), 7.0);
    assert_eq!(metric_in(text, "z", &[]), 0.0);
}
