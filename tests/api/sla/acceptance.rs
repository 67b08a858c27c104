//! The acceptance SLA: armed when a booking is routed, at risk at 80 % of the window, breached
//! at 100 % (with an `sla_breach` case); met by `accept`, cancelled with the booking; an
//! acceptance breach re-routes (or fails the booking) unless switched off.

use std::time::Duration;

use serde_json::Value;

use super::{
    actions, assert_by_timer, assert_within, case_types, cases_of, entries, last_state, metric, ms,
    only_entry, render, sla_audit, sla_world, sleep_until_ms, timeline_items, wait_booking,
    NO_REROUTE, ON_TIME_MS,
};
use crate::harness::{str_of, BLR_FULL};

/// `(started_at, at_risk_at, due_at)` of an SLA entry, in ms.
fn window(e: &Value) -> (i64, i64, i64) {
    (ms(&e["started_at"]), ms(&e["at_risk_at"]), ms(&e["due_at"]))
}

/// Asserts a fresh acceptance entry: pending, opened at routing, `window_ms` long, at risk at
/// 80 % of it.
#[track_caller]
fn assert_fresh_acceptance(e: &Value, routed_lo: i64, routed_hi: i64, window_ms: i64) {
    assert_eq!(e["state"], "pending", "fresh acceptance entry: {e}");
    assert!(
        e.get("breached_at").is_none_or(Value::is_null),
        "fresh entry with breached_at: {e}"
    );
    let (started, at_risk, due) = window(e);
    assert_within(
        "acceptance started_at (the routing time)",
        started,
        routed_lo,
        routed_hi,
    );
    assert_eq!(due - started, window_ms, "due_at - started_at: {e}");
    assert_within(
        "at_risk_at = started_at + 0.8 × window",
        at_risk,
        started + window_ms * 8 / 10 - 1,
        started + window_ms * 8 / 10 + 1,
    );
}

#[tokio::test]
async fn acceptance_sla_goes_at_risk_then_breaches_on_time() {
    let (app, w) = sla_world(NO_REROUTE, "2s", "2h").await;
    let pa = &w.partner;

    let b = app
        .create_booking(&pa.key, &pa.booking(0, "sla-acc-breach"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let provider = str_of(&b["provider_id"]);
    assert_eq!(b["state"], "pending_provider");
    let created = ms(&b["created_at"]);
    let acc = only_entry(&b, "acceptance");
    assert_fresh_acceptance(acc, created, created + 100, 2_000);
    let (_, at_risk_at, due_at) = window(acc);
    assert!(case_types(&b).is_empty(), "fresh booking with cases: {b}");

    // The entry leaves `pending` at the at-risk point, as `at_risk`.
    let (v, seen) = wait_booking(
        &app,
        &pa.key,
        &id,
        "the acceptance entry to leave `pending`",
        Duration::from_secs(5),
        |v| last_state(v, "acceptance") != "pending",
    )
    .await;
    assert_eq!(
        last_state(&v, "acceptance"),
        "at_risk",
        "the entry must go at_risk before it breaches (seen at {seen}, due {due_at}): {v}"
    );
    assert!(
        seen >= at_risk_at,
        "at_risk seen at {seen}, before at_risk_at {at_risk_at}"
    );
    assert_within(
        "first view showing at_risk",
        seen,
        at_risk_at,
        at_risk_at + ON_TIME_MS + 200,
    );
    assert!(
        case_types(&v).is_empty(),
        "a case before the breach: {}",
        v["exceptions"]
    );

    // At due it breaches, once.
    let (v, seen) = wait_booking(
        &app,
        &pa.key,
        &id,
        "the acceptance entry to breach",
        Duration::from_secs(5),
        |v| last_state(v, "acceptance") == "breached",
    )
    .await;
    let acc = only_entry(&v, "acceptance");
    let breached_at = ms(&acc["breached_at"]);
    assert_within("breached_at", breached_at, due_at, due_at + ON_TIME_MS);
    assert_within(
        "first view showing breached",
        seen,
        due_at,
        due_at + ON_TIME_MS + 200,
    );
    assert_eq!(v["state"], "pending_provider", "reroute is off: {v}");
    assert_eq!(v["provider_id"], provider.as_str(), "reroute is off: {v}");

    // Nothing more happens afterwards: one case, one breach.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let v = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(
        case_types(&v),
        vec!["sla_breach".to_string()],
        "exactly one sla_breach case expected: {}",
        v["exceptions"]
    );
    assert_eq!(only_entry(&v, "acceptance")["state"], "breached");
    assert_eq!(
        ms(&only_entry(&v, "acceptance")["breached_at"]),
        breached_at,
        "breached_at changed"
    );

    let tl = timeline_items(&app, &pa.key, &id).await;
    let sla = sla_audit(&tl);
    assert_eq!(
        actions(&sla),
        ["sla.at_risk", "sla.breached"],
        "SLA audit entries in order; timeline:\n{}",
        render(&tl)
    );
    for e in &sla {
        assert_by_timer(e);
        assert_eq!(e["from_state"], "pending_provider", "{e}");
        assert_eq!(e["to_state"], "pending_provider", "{e}");
    }
    assert_within(
        "sla.at_risk audit `at`",
        ms(&sla[0]["at"]),
        at_risk_at,
        at_risk_at + ON_TIME_MS,
    );
    assert_within(
        "sla.breached audit `at`",
        ms(&sla[1]["at"]),
        due_at,
        due_at + ON_TIME_MS,
    );

    // Metrics: one at-risk and one breach of kind acceptance, timers armed and fired.
    let outcome = |state: &'static str| {
        let app = &app;
        async move {
            metric(
                app,
                "dxstack_sla_outcomes_total",
                &[("kind", "acceptance"), ("state", state)],
            )
            .await
        }
    };
    assert_eq!(outcome("at_risk").await, 1.0, "sla_outcomes at_risk");
    assert_eq!(outcome("breached").await, 1.0, "sla_outcomes breached");
    assert!(metric(&app, "dxstack_timers_armed_total", &[]).await >= 2.0);
    assert!(
        metric(&app, "dxstack_timer_lateness_seconds_count", &[]).await >= 2.0,
        "the lateness histogram did not observe the two firings"
    );
}

#[tokio::test]
async fn a_met_acceptance_sla_never_breaches() {
    let (app, w) = sla_world("", "3s", "2h").await;
    let pa = &w.partner;

    // A: accepted at once. B: accepted once at risk (met from at_risk).
    let a = app
        .create_booking(&pa.key, &pa.booking(0, "sla-met-a"))
        .await
        .ok(201);
    let b = app
        .create_booking(&pa.key, &pa.booking(1, "sla-met-b"))
        .await
        .ok(201);
    let mut dues = Vec::new();
    for v in [&a, &b] {
        let (_, _, due) = window(only_entry(v, "acceptance"));
        dues.push(due);
    }

    let a_id = str_of(&a["id"]);
    let a_prov = str_of(&a["provider_id"]);
    let v = app
        .provider_event(&w.provider(&a_prov).key, &a_id, "accept")
        .await
        .ok(200);
    assert_eq!(v["state"], "confirmed");
    let acc = only_entry(&v, "acceptance");
    assert_eq!(acc["state"], "met", "accepted before due: {v}");
    assert_within(
        "A met_at",
        ms(&acc["met_at"]),
        ms(&acc["started_at"]),
        dues[0] - 1,
    );

    let b_id = str_of(&b["id"]);
    let b_prov = str_of(&b["provider_id"]);
    wait_booking(
        &app,
        &pa.key,
        &b_id,
        "B's acceptance entry to go at_risk",
        Duration::from_secs(5),
        |v| last_state(v, "acceptance") != "pending",
    )
    .await;
    let v = app
        .provider_event(&w.provider(&b_prov).key, &b_id, "accept")
        .await
        .ok(200);
    let acc = only_entry(&v, "acceptance");
    assert_eq!(
        acc["state"], "met",
        "B accepted while at risk (before due {}): {v}",
        dues[1]
    );
    assert!(
        ms(&acc["met_at"]) < dues[1],
        "B met_at after its due: {acc}"
    );

    // Wait (wall clock) well past both old due times.
    sleep_until_ms(dues[0].max(dues[1]) + 1_500).await;

    for (id, prov, want_at_risk) in [(&a_id, &a_prov, 0), (&b_id, &b_prov, 1)] {
        let v = app.get_booking(&pa.key, id).await.ok(200);
        assert_eq!(v["state"], "confirmed", "{v}");
        assert_eq!(v["provider_id"], prov.as_str(), "{v}");
        let acc = only_entry(&v, "acceptance");
        assert_eq!(acc["state"], "met", "a met SLA changed after its due: {v}");
        assert!(
            acc.get("breached_at").is_none_or(Value::is_null),
            "met entry with breached_at: {acc}"
        );
        assert!(
            case_types(&v).is_empty(),
            "met SLA opened a case: {}",
            v["exceptions"]
        );
        let tl = timeline_items(&app, &pa.key, id).await;
        let sla = sla_audit(&tl);
        let want: Vec<&str> = if want_at_risk == 1 {
            vec!["sla.at_risk"]
        } else {
            vec![]
        };
        assert_eq!(
            actions(&sla),
            want,
            "SLA audit entries of {id}:\n{}",
            render(&tl)
        );
    }
    assert_eq!(
        metric(
            &app,
            "dxstack_sla_outcomes_total",
            &[("kind", "acceptance"), ("state", "breached")]
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn a_cancelled_bookings_timers_never_fire() {
    let (app, w) = sla_world("", "2s", "2h").await;
    let pa = &w.partner;

    // A: cancelled at once. B: cancelled once at risk. C: accepted, then cancelled.
    let mut ids = Vec::new();
    let mut due_max = 0;
    for (n, name) in ["a", "b", "c"].iter().enumerate() {
        let v = app
            .create_booking(&pa.key, &pa.booking(n, &format!("sla-cancel-{name}")))
            .await
            .ok(201);
        due_max = due_max.max(window(only_entry(&v, "acceptance")).2);
        ids.push((str_of(&v["id"]), str_of(&v["provider_id"])));
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);

    let v = app.cancel_booking(&pa.key, &a.0, "sla test").await.ok(200);
    assert_eq!(v["state"], "cancelled");
    assert_eq!(
        only_entry(&v, "acceptance")["state"],
        "cancelled",
        "cancelling cancels open entries: {v}"
    );

    let v = app
        .provider_event(&w.provider(&c.1).key, &c.0, "accept")
        .await
        .ok(200);
    assert_eq!(only_entry(&v, "fulfilment")["state"], "pending", "{v}");
    let v = app.cancel_booking(&pa.key, &c.0, "sla test").await.ok(200);
    assert_eq!(only_entry(&v, "acceptance")["state"], "met", "{v}");
    assert_eq!(only_entry(&v, "fulfilment")["state"], "cancelled", "{v}");

    wait_booking(
        &app,
        &pa.key,
        &b.0,
        "B's acceptance entry to go at_risk",
        Duration::from_secs(5),
        |v| last_state(v, "acceptance") != "pending",
    )
    .await;
    let v = app.cancel_booking(&pa.key, &b.0, "sla test").await.ok(200);
    assert_eq!(
        only_entry(&v, "acceptance")["state"],
        "cancelled",
        "an at-risk entry is cancelled with its booking: {v}"
    );

    // Wait (wall clock) well past the old due times.
    sleep_until_ms(due_max + 1_500).await;

    for (id, want_before_cancel) in [(&a.0, vec![]), (&b.0, vec!["sla.at_risk"]), (&c.0, vec![])] {
        let v = app.get_booking(&pa.key, id).await.ok(200);
        assert_eq!(v["state"], "cancelled", "{v}");
        for e in v["sla"].as_array().expect("sla") {
            assert!(
                e["state"] == "cancelled" || e["state"] == "met",
                "an entry of a cancelled booking moved on: {e}"
            );
            assert!(
                e.get("breached_at").is_none_or(Value::is_null),
                "cancelled booking with breached_at: {e}"
            );
        }
        assert!(
            case_types(&v).is_empty(),
            "cancelled booking got a case: {}",
            v["exceptions"]
        );
        let tl = timeline_items(&app, &pa.key, id).await;
        let cancel_at = tl
            .iter()
            .position(|e| e["to_state"] == "cancelled")
            .unwrap_or_else(|| panic!("no cancel entry in the timeline:\n{}", render(&tl)));
        let before: Vec<&Value> = sla_audit(&tl[..cancel_at]);
        let after: Vec<&Value> = sla_audit(&tl[cancel_at..]);
        assert!(
            after.is_empty(),
            "SLA audit entries after the cancel:\n{}",
            render(&tl)
        );
        assert_eq!(
            actions(&before),
            want_before_cancel,
            "SLA audit entries before the cancel:\n{}",
            render(&tl)
        );
    }
    assert_eq!(
        metric(&app, "dxstack_sla_outcomes_total", &[("state", "breached")]).await,
        0.0
    );
}

#[tokio::test]
async fn an_acceptance_breach_reroutes_then_fails_when_no_provider_is_left() {
    let (app, w) = sla_world("", "2s", "2h").await;
    let pa = &w.partner;

    let b = app
        .create_booking(&pa.key, &pa.booking(0, "sla-reroute"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let first = str_of(&b["provider_id"]);
    assert!(BLR_FULL.contains(&first.as_str()), "{b}");
    let second = BLR_FULL.iter().find(|p| **p != first).unwrap().to_string();
    let (_, _, due1) = window(only_entry(&b, "acceptance"));

    // First breach: re-routed to the other provider with a fresh acceptance entry.
    let (v, _) = wait_booking(
        &app,
        &pa.key,
        &id,
        "the first acceptance breach",
        Duration::from_secs(5),
        |v| entries(v, "acceptance")[0]["state"] == "breached",
    )
    .await;
    let accs = entries(&v, "acceptance");
    assert_eq!(accs.len(), 2, "a re-route arms a new acceptance entry: {v}");
    let breached1 = ms(&accs[0]["breached_at"]);
    assert_within("first breached_at", breached1, due1, due1 + ON_TIME_MS);
    assert_eq!(v["state"], "pending_provider", "{v}");
    assert_eq!(v["provider_id"], second.as_str(), "re-routed: {v}");
    assert_eq!(v["routing"]["provider_id"], second.as_str(), "{v}");
    assert_eq!(v["routing"]["attempt"], 2, "{}", v["routing"]);
    assert_fresh_acceptance(accs[1], breached1, breached1 + 100, 2_000);
    let (_, _, due2) = window(accs[1]);
    assert_eq!(cases_of(&v, "sla_breach"), 1, "{}", v["exceptions"]);

    // The first provider no longer sees it; the second does.
    app.provider_event(&w.provider(&first).key, &id, "accept")
        .await
        .problem(404, "not_found");
    let mine = app
        .provider_bookings(&w.provider(&second).key, Some("pending_provider"))
        .await
        .ok(200);
    assert!(
        mine["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["id"] == id.as_str()),
        "re-routed booking missing from {second}'s list: {mine}"
    );

    // Second breach: no provider left → failed, with a no_provider case.
    let (v, _) = wait_booking(
        &app,
        &pa.key,
        &id,
        "the second acceptance breach",
        Duration::from_secs(5),
        |v| v["state"] != "pending_provider",
    )
    .await;
    assert_eq!(v["state"], "failed", "no provider is left: {v}");
    let accs = entries(&v, "acceptance");
    assert_eq!(accs.len(), 2, "no third acceptance entry: {v}");
    assert_eq!(accs[0]["state"], "breached");
    assert_eq!(accs[1]["state"], "breached", "{v}");
    assert_within(
        "second breached_at",
        ms(&accs[1]["breached_at"]),
        due2,
        due2 + ON_TIME_MS,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = app.get_booking(&pa.key, &id).await.ok(200);
    let mut types = case_types(&v);
    types.sort();
    assert_eq!(
        types,
        ["no_provider", "sla_breach", "sla_breach"],
        "cases: {}",
        v["exceptions"]
    );

    let tl = timeline_items(&app, &pa.key, &id).await;
    let breaches: Vec<&Value> = sla_audit(&tl)
        .into_iter()
        .filter(|e| e["action"] == "sla.breached")
        .collect();
    assert_eq!(breaches.len(), 2, "timeline:\n{}", render(&tl));
    for e in &breaches {
        assert_by_timer(e);
    }
    assert_eq!(breaches[0]["from_state"], "pending_provider");
    assert_eq!(breaches[0]["to_state"], "pending_provider");
    assert_eq!(breaches[1]["from_state"], "pending_provider");
    assert_eq!(
        breaches[1]["to_state"],
        "failed",
        "timeline:\n{}",
        render(&tl)
    );
    assert_eq!(
        actions(&sla_audit(&tl)),
        ["sla.at_risk", "sla.breached", "sla.at_risk", "sla.breached"],
        "timeline:\n{}",
        render(&tl)
    );
}

#[tokio::test]
async fn without_reroute_an_acceptance_breach_stays_with_the_provider() {
    let (app, w) = sla_world(NO_REROUTE, "2s", "2h").await;
    let pa = &w.partner;

    let b = app
        .create_booking(&pa.key, &pa.booking(0, "sla-no-reroute"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let first = str_of(&b["provider_id"]);
    let (_, _, due) = window(only_entry(&b, "acceptance"));

    wait_booking(
        &app,
        &pa.key,
        &id,
        "the acceptance breach",
        Duration::from_secs(5),
        |v| last_state(v, "acceptance") == "breached",
    )
    .await;
    // Give a (wrong) re-route time to show up.
    sleep_until_ms(due + 1_000).await;
    let v = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(v["state"], "pending_provider", "{v}");
    assert_eq!(
        v["provider_id"],
        first.as_str(),
        "re-routed with reroute off: {v}"
    );
    assert_eq!(v["routing"]["attempt"], 1, "{}", v["routing"]);
    assert_eq!(only_entry(&v, "acceptance")["state"], "breached");
    assert_eq!(case_types(&v), ["sla_breach"], "{}", v["exceptions"]);

    // Still the first provider's booking: it may accept late; the breach stays final.
    let v = app
        .provider_event(&w.provider(&first).key, &id, "accept")
        .await
        .ok(200);
    assert_eq!(v["state"], "confirmed", "{v}");
    assert_eq!(
        only_entry(&v, "acceptance")["state"],
        "breached",
        "a breached entry is final: {v}"
    );
    assert_eq!(only_entry(&v, "fulfilment")["state"], "pending", "{v}");
}
