//! Capacity is exact under concurrency and across a crash: 20 slots on an India day, 50
//! bookings at once → exactly 20 routed and 30 refused; after SIGKILL and restart the counts
//! hold and a further booking that day is refused.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{booking, lab, provider_list_ids, reason_codes, Net, BLR};
use crate::harness::{str_of, TestApp};

/// Provider → daily capacity: 20 slots in all.
const CAPACITY: [(&str, usize); 3] = [("cc-a", 8), ("cc-b", 7), ("cc-c", 5)];
const TOTAL: usize = 20;
const BURST: usize = 50;

/// Slot `i` (15 minutes) on the India day 2030-01-01: from 00:00 IST (2029-12-31T18:30Z)
/// every 20 minutes, so some are on the previous UTC date.
fn slot(i: usize) -> (String, String) {
    let day_start = OffsetDateTime::parse("2029-12-31T18:30:00Z", &Rfc3339).expect("time");
    let start = day_start + Duration::minutes(20 * i as i64);
    let end = start + Duration::minutes(15);
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).expect("format");
    (fmt(start), fmt(end))
}

/// Checks the partner's bookings against the capacities: `TOTAL` routed bookings, each
/// provider exactly at capacity, and each provider's own list showing exactly its share.
async fn check_counts(app: &TestApp, net: &Net, admitted: &BTreeSet<String>, when: &str) {
    let all = app.list_all_bookings(net.pk(), "").await;
    let ids: BTreeSet<String> = all.iter().map(|b| str_of(&b["id"])).collect();
    assert_eq!(
        &ids, admitted,
        "{when}: the partner list differs from the 201 answers"
    );
    let mut per: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in &all {
        assert_eq!(b["state"], "pending_provider", "{when}: {b}");
        per.entry(str_of(&b["provider_id"]))
            .or_default()
            .insert(str_of(&b["id"]));
    }
    for (p, cap) in CAPACITY {
        let n = per.get(p).map_or(0, BTreeSet::len);
        assert!(n <= cap, "{when}: {p} has {n} bookings, capacity {cap}");
        assert_eq!(
            n, cap,
            "{when}: {p} has {n} of {cap} (total {TOTAL} routed)"
        );
        let own = provider_list_ids(app, net.key(p)).await;
        assert_eq!(
            own, per[p],
            "{when}: {p}'s own list differs from the partner list"
        );
    }
    assert_eq!(
        per.len(),
        CAPACITY.len(),
        "{when}: unknown providers: {per:?}"
    );
}

/// Asserts a booking on the full day is refused with `network_not_covered` only, and one on
/// the next India day is admitted.
async fn check_day_is_full(app: &TestApp, net: &Net, tag: &str) {
    let (s, e) = slot(60);
    let body = booking(
        net.member(0),
        &["CBC"],
        (&s, &e),
        BLR,
        &format!("cc-{tag}-late"),
    );
    let r = app.create_booking(net.pk(), &body).await;
    assert_eq!(
        reason_codes(&r),
        ["network_not_covered"],
        "{tag}: a booking on the full day: {}",
        r.text()
    );
    let body = booking(
        net.member(1),
        &["CBC"],
        ("2030-01-02T03:30:00Z", "2030-01-02T04:00:00Z"),
        BLR,
        &format!("cc-{tag}-next-day"),
    );
    let b = app.create_booking(net.pk(), &body).await.ok(201);
    assert!(
        CAPACITY.iter().any(|(p, _)| b["provider_id"] == *p),
        "{tag}: next-day booking: {b}"
    );
}

#[tokio::test]
async fn fifty_concurrent_bookings_fill_exactly_twenty_slots_and_survive_sigkill() {
    let mut app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let spots = [(12.9716, 77.5946), (12.9800, 77.6000), (12.9650, 77.5850)];
    for ((id, cap), (lat, lon)) in CAPACITY.into_iter().zip(spots) {
        let mut body = lab(lat, lon, BLR.2);
        body["daily_capacity"] = serde_json::json!(cap);
        net.add(&app, id, &body).await;
    }
    assert_eq!(CAPACITY.iter().map(|c| c.1).sum::<usize>(), TOTAL);

    let bodies: Vec<Value> = (0..BURST)
        .map(|i| {
            let (s, e) = slot(i);
            booking(
                net.member(i % 4),
                &["CBC"],
                (&s, &e),
                BLR,
                &format!("cc-{i}"),
            )
        })
        .collect();
    let answers = join_all(bodies.iter().map(|b| app.create_booking(net.pk(), b))).await;
    let mut admitted = BTreeSet::new();
    let mut refused = 0;
    for r in &answers {
        match r.status {
            201 => {
                admitted.insert(str_of(&r.json()["id"]));
            }
            422 => {
                assert_eq!(reason_codes(r), ["network_not_covered"], "{}", r.text());
                refused += 1;
            }
            s => panic!("unexpected answer {s}: {}", r.text()),
        }
    }
    assert_eq!(admitted.len(), TOTAL, "routed bookings out of {BURST}");
    assert_eq!(refused, BURST - TOTAL, "refused bookings out of {BURST}");
    check_counts(&app, &net, &admitted, "after the burst").await;

    app.kill9().await;
    app.restart().await;
    check_counts(&app, &net, &admitted, "after SIGKILL and restart").await;
    check_day_is_full(&app, &net, "after restart").await;
}
