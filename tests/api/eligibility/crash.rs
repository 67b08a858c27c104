//! SIGKILL in the middle of a burst of bookings (some cancelled, some completed) against a
//! member with a count and an amount limit. After the restart the ledger matches the
//! surviving bookings exactly and no limit is exceeded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::harness::{Resp, START_DEADLINE};

use super::{booking, codes, int, lab, member, moves, policy, row, str_of, Move, Net};

const LAB: &str = "category:lab";
const ANNUAL_COUNT: i64 = 12;
const ANNUAL_LIMIT: i64 = 300_000;
const BILLED: i64 = 30_000;
const TASKS: usize = 80;
const IN_FLIGHT: usize = 8;
/// Answers (of any kind) before the SIGKILL.
const KILL_AFTER: usize = 30;

/// What the client was last told about a booking.
#[derive(Debug, Clone)]
struct Acked {
    state: String,
    version: i64,
}

struct Burst {
    acked: Mutex<BTreeMap<String, Acked>>,
    refusals: AtomicUsize,
    answers: AtomicUsize,
    enough: Notify,
}

impl Burst {
    /// Counts an answer; the KILL_AFTER-th wakes the killer.
    fn answered(&self) {
        if self.answers.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            self.enough.notify_one();
        }
    }

    fn ack(&self, view: &Value) {
        let id = str_of(&view["id"]);
        self.acked.lock().expect("ack map").insert(
            id,
            Acked {
                state: str_of(&view["state"]),
                version: int(&view["version"]),
            },
        );
    }
}

async fn send(net: &Net, method: Method, path: &str, token: &str, body: &Value) -> Option<Resp> {
    let rb = net.app.request(method, path, Some(token)).json(body);
    net.app.try_send(rb).await.ok()
}

/// Books; then by `i % 3` leaves it, cancels it, or runs it to completed (billed 30,000).
/// Stops at the first request without an answer.
async fn task(net: &Net, burst: &Burst, i: usize) {
    let body = booking("burst", &["CBC"], &format!("burst-{i}"));
    let Some(r) = send(net, Method::POST, "/v1/bookings", &net.key, &body).await else {
        return;
    };
    burst.answered();
    if r.status == 422 {
        let p = r.problem(422, "ineligible");
        let got = codes(&p["reasons"]);
        let allowed: BTreeSet<String> = ["count_limit_exhausted", "amount_limit_exhausted"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert!(
            !got.is_empty() && got.is_subset(&allowed),
            "refused for {got:?}: {p}"
        );
        burst.refusals.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let view = r.ok(201);
    burst.ack(&view);
    let id = str_of(&view["id"]);
    let steps: Vec<(String, &str, Value)> = match i % 3 {
        1 => vec![(
            format!("/v1/bookings/{id}/cancel"),
            net.key.as_str(),
            json!({"reason": "burst"}),
        )],
        2 => [
            json!({"type": "accept"}),
            json!({"type": "started"}),
            json!({"type": "completed", "billed_paise": BILLED}),
        ]
        .into_iter()
        .map(|e| {
            (
                format!("/v1/provider/bookings/{id}/events"),
                net.gold_key.as_str(),
                e,
            )
        })
        .collect(),
        _ => Vec::new(),
    };
    for (path, token, body) in steps {
        let Some(r) = send(net, Method::POST, &path, token, &body).await else {
            return;
        };
        burst.answered();
        burst.ack(&r.ok(200));
    }
}

#[tokio::test]
async fn sigkill_mid_burst_keeps_the_ledger_equal_to_the_surviving_bookings() {
    let mut net = Net::build().await;
    net.policy(
        "burst-pol",
        &policy(json!([lab(json!({
            "copay_percent": 20,
            "annual_count": ANNUAL_COUNT,
            "annual_limit_paise": ANNUAL_LIMIT,
        }))])),
    )
    .await;
    net.member("burst", &member("burst-pol", json!({}))).await;

    let burst = Burst {
        acked: Mutex::new(BTreeMap::new()),
        refusals: AtomicUsize::new(0),
        answers: AtomicUsize::new(0),
        enough: Notify::new(),
    };
    {
        let (n, b) = (&net, &burst);
        let load = stream::iter(0..TASKS)
            .map(|i| task(n, b, i))
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<()>>();
        let crash = async {
            tokio::time::timeout(START_DEADLINE, b.enough.notified())
                .await
                .expect("the burst got no 30 answers within 30 s");
            n.app.signal("KILL").await;
        };
        futures::join!(load, crash);
    }
    let _ = net.app.wait_exit().await;
    let answers = burst.answers.load(Ordering::SeqCst);
    assert!(
        answers < TASKS,
        "the kill came after the burst ({answers} answers), not in its middle"
    );
    let acked = burst.acked.into_inner().expect("ack map");
    assert!(
        !acked.is_empty(),
        "no booking was acknowledged before the kill"
    );

    net.app.restart().await;
    let view = net.ents("burst").await;
    let listed = net.bookings_of("burst").await;
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for b in &listed {
        let id = str_of(&b["id"]);
        let full = net.app.get_booking(&net.key, &id).await.ok(200);
        by_id.insert(id, full);
    }
    // Every acknowledged booking survived, at least as far as it was acknowledged.
    for (id, a) in &acked {
        let got = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acked booking {id} ({}) lost", a.state));
        assert!(
            int(&got["version"]) >= a.version,
            "{id}: acked v{} {}, read back {got}",
            a.version,
            a.state
        );
        if int(&got["version"]) == a.version {
            assert_eq!(got["state"], a.state.as_str(), "{id}: {got}");
        }
    }

    // The ledger equals the surviving bookings.
    let in_state = |states: &[&str]| -> Vec<&Value> {
        by_id
            .values()
            .filter(|b| states.contains(&b["state"].as_str().unwrap_or("")))
            .collect()
    };
    let active = in_state(&["pending_provider", "confirmed", "in_progress"]);
    let completed = in_state(&["completed"]);
    let cancelled = in_state(&["cancelled"]);
    assert_eq!(
        active.len() + completed.len() + cancelled.len(),
        by_id.len(),
        "bookings in unexpected states: {listed:?}"
    );
    let covered = |b: &Value| int(&b["amounts"]["covered_paise"]);
    let gross = |b: &Value| int(&b["amounts"]["gross_paise"]);
    let consumed = |b: &Value| (BILLED * covered(b) / gross(b)).min(covered(b));
    let r = row(&view, LAB);
    let ids = |l: &[&Value]| -> Vec<String> { l.iter().map(|b| str_of(&b["id"])).collect() };
    assert_eq!(
        r.count_reserved as usize,
        active.len(),
        "count_reserved vs the active bookings {:?}: {view}",
        ids(&active)
    );
    assert_eq!(
        r.amount_reserved,
        active.iter().map(|b| covered(b)).sum::<i64>(),
        "amount_reserved vs the cover of the active bookings {:?}: {view}",
        ids(&active)
    );
    assert_eq!(
        r.count_used as usize,
        completed.len(),
        "count_used vs the completed bookings {:?}: {view}",
        ids(&completed)
    );
    assert_eq!(
        r.amount_used,
        completed.iter().map(|b| consumed(b)).sum::<i64>(),
        "amount_used vs the completed bookings {:?}: {view}",
        ids(&completed)
    );
    assert!(
        r.count_used + r.count_reserved <= ANNUAL_COUNT
            && r.amount_used + r.amount_reserved <= ANNUAL_LIMIT,
        "a limit was exceeded: {view}"
    );
    // Each booking's own moves match its state, and every move belongs to a booking.
    let all = moves(&view);
    for m in &all {
        assert!(
            by_id.contains_key(&m.booking_id),
            "a move of a booking that does not exist: {m:?}"
        );
    }
    for (id, b) in &by_id {
        let mut own: Vec<Move> = all
            .iter()
            .filter(|m| &m.booking_id == id)
            .cloned()
            .collect();
        own.sort();
        let c = covered(b);
        let mv =
            |kind: &str, count: i64, amount: i64| Move::new(id, "burst", LAB, kind, count, amount);
        let mut want = vec![mv("reserve", 1, c)];
        match b["state"].as_str() {
            Some("cancelled") => want.push(mv("release", 1, c)),
            Some("completed") => {
                let x = consumed(b);
                want.push(mv("consume", 1, x));
                if c > x {
                    want.push(mv("release", 0, c - x));
                }
            }
            _ => {}
        }
        want.sort();
        assert_eq!(own, want, "moves of {id} ({})", b["state"]);
    }

    // After the restart the limits still hold: book until refused.
    let mut admitted = 0;
    let refusal = loop {
        let r = net
            .book("burst", &["CBC"], &format!("after-{admitted}"))
            .await;
        if r.status == 422 {
            break r.problem(422, "ineligible");
        }
        r.ok(201);
        admitted += 1;
        assert!(
            admitted <= ANNUAL_COUNT,
            "more bookings admitted than the annual count"
        );
    };
    let view = net.ents("burst").await;
    let r = row(&view, LAB);
    let got = codes(&refusal["reasons"]);
    assert!(
        (got.contains("count_limit_exhausted") && r.count_remaining == Some(0))
            || (got.contains("amount_limit_exhausted") && r.amount_remaining == Some(0)),
        "refused for {got:?} with {r:?}"
    );
    assert_eq!(
        r.count_reserved as usize,
        active.len() + admitted as usize,
        "{view}"
    );
}
