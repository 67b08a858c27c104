//! The fulfilment SLA (accept → slot end + the provider's `fulfil_grace`) and the report SLA
//! (`started`/`sample_collected` → + the longest catalog `report_tat` of the booking).

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    actions, assert_by_timer, assert_within, case_types, entries, last_state, ms, now_ms,
    only_entry, render, rfc3339, sla_audit, sla_world, sleep_until_ms, timeline_items,
    wait_booking, ON_TIME_MS,
};
use crate::harness::{str_of, TestApp, World};

/// Asserts an entry opened at `[lo, hi]`, due at `due`, at risk at 80 % of its window.
#[track_caller]
fn assert_armed(what: &str, e: &Value, lo: i64, hi: i64, due: i64) {
    assert_eq!(e["state"], "pending", "{what}: {e}");
    let started = ms(&e["started_at"]);
    assert_within(&format!("{what} started_at"), started, lo, hi);
    assert_eq!(
        ms(&e["due_at"]),
        due,
        "{what} due_at: want {}, entry {e}",
        rfc3339(due)
    );
    let at_risk = started + (due - started) * 8 / 10;
    assert_within(
        &format!("{what} at_risk_at = started_at + 0.8 × window"),
        ms(&e["at_risk_at"]),
        at_risk - 1,
        at_risk + 1,
    );
}

/// Sends a provider event; returns the view and the wall-clock bounds of the request.
async fn event(app: &TestApp, w: &World, b: &Value, ty: &str) -> (Value, i64, i64) {
    let key = &w.provider(&str_of(&b["provider_id"])).key;
    let lo = now_ms();
    let v = app.provider_event(key, &str_of(&b["id"]), ty).await.ok(200);
    (v, lo, now_ms())
}

#[tokio::test]
async fn fulfilment_and_report_slas_arm_breach_and_are_met() {
    let (app, w) = sla_world("", "30m", "1s").await;
    for (code, tat) in [("CBC", "3s"), ("LIPID", "2s")] {
        let body = json!({"name": format!("{code} test"), "category": "lab", "report_tat": tat});
        app.put_catalog(code, &body).await.ok(200);
    }
    let pa = &w.partner;

    // A slot ending a few seconds from now (whole seconds).
    let slot_end = (now_ms() / 1000 + 3) * 1000;
    let slot = json!({"start": rfc3339(slot_end - 10_000), "end": rfc3339(slot_end)});
    let mut made = Vec::new();
    for (n, name) in ["a", "b", "c"].iter().enumerate() {
        let mut body = pa.booking(n, &format!("sla-fulfil-{name}"));
        body["slot"] = slot.clone();
        made.push(app.create_booking(&pa.key, &body).await.ok(201));
    }

    // Every accept arms the fulfilment SLA: due = slot.end + grace (1 s).
    let mut accepted = Vec::new();
    for b in &made {
        let (v, lo, hi) = event(&app, &w, b, "accept").await;
        assert_eq!(v["state"], "confirmed", "{v}");
        assert_eq!(only_entry(&v, "acceptance")["state"], "met", "{v}");
        assert_armed(
            "fulfilment",
            only_entry(&v, "fulfilment"),
            lo,
            hi,
            slot_end + 1_000,
        );
        assert!(
            entries(&v, "report").is_empty(),
            "report SLA too early: {v}"
        );
        accepted.push(v);
    }
    let (a, b, c) = (&accepted[0], &accepted[1], &accepted[2]);
    let fulfil_due = slot_end + 1_000;

    // B starts, C collects the sample: fulfilment met, report armed for started + 3 s (the
    // longest report_tat of CBC 3 s and LIPID 2 s).
    let mut report_due = Vec::new();
    for (v, ty) in [(b, "started"), (c, "sample_collected")] {
        let (v, lo, hi) = event(&app, &w, v, ty).await;
        assert_eq!(v["state"], "in_progress", "{v}");
        let f = only_entry(&v, "fulfilment");
        assert_eq!(f["state"], "met", "{ty} meets the fulfilment SLA: {v}");
        assert!(ms(&f["met_at"]) < fulfil_due, "{f}");
        let r = only_entry(&v, "report");
        let started = ms(&r["started_at"]);
        assert_armed("report", r, lo, hi, started + 3_000);
        report_due.push(started + 3_000);
    }

    // B: report at risk, then report_ready meets it.
    let b_id = str_of(&b["id"]);
    let (_, seen) = wait_booking(
        &app,
        &pa.key,
        &b_id,
        "B's report SLA to go at_risk",
        Duration::from_secs(6),
        |v| last_state(v, "report") != "pending",
    )
    .await;
    assert!(seen < report_due[0], "B's report SLA left pending late");
    let (v, _, _) = event(&app, &w, b, "report_ready").await;
    let r = only_entry(&v, "report");
    assert_eq!(r["state"], "met", "report_ready meets the report SLA: {v}");
    assert!(ms(&r["met_at"]) < report_due[0], "{r}");
    assert_eq!(v["state"], "in_progress", "{v}");

    // C: the report SLA breaches on time.
    let c_id = str_of(&c["id"]);
    let (v, _) = wait_booking(
        &app,
        &pa.key,
        &c_id,
        "C's report SLA to breach",
        Duration::from_secs(6),
        |v| last_state(v, "report") == "breached",
    )
    .await;
    assert_within(
        "C report breached_at",
        ms(&only_entry(&v, "report")["breached_at"]),
        report_due[1],
        report_due[1] + ON_TIME_MS,
    );
    assert_eq!(v["state"], "in_progress", "{v}");

    // A: the fulfilment SLA breaches on time.
    let a_id = str_of(&a["id"]);
    let (v, _) = wait_booking(
        &app,
        &pa.key,
        &a_id,
        "A's fulfilment SLA to breach",
        Duration::from_secs(8),
        |v| last_state(v, "fulfilment") == "breached",
    )
    .await;
    assert_within(
        "A fulfilment breached_at",
        ms(&only_entry(&v, "fulfilment")["breached_at"]),
        fulfil_due,
        fulfil_due + ON_TIME_MS,
    );
    assert_eq!(v["state"], "confirmed", "{v}");

    // Past every due time: A and C have one sla_breach case each, B none.
    sleep_until_ms(fulfil_due.max(report_due[0]).max(report_due[1]) + 500).await;
    for (id, kind, to_state, breached) in [
        (&a_id, "fulfilment", "confirmed", true),
        (&b_id, "report", "in_progress", false),
        (&c_id, "report", "in_progress", true),
    ] {
        let v = app.get_booking(&pa.key, id).await.ok(200);
        let want_cases: &[&str] = if breached { &["sla_breach"] } else { &[] };
        assert_eq!(case_types(&v), want_cases, "{id}: {}", v["exceptions"]);
        let want_state = if breached { "breached" } else { "met" };
        assert_eq!(only_entry(&v, kind)["state"], want_state, "{id}: {v}");
        let tl = timeline_items(&app, &pa.key, id).await;
        let sla = sla_audit(&tl);
        let want: &[&str] = if breached {
            &["sla.at_risk", "sla.breached"]
        } else {
            &["sla.at_risk"]
        };
        assert_eq!(actions(&sla), want, "{id} timeline:\n{}", render(&tl));
        for e in &sla {
            assert_by_timer(e);
            assert_eq!(e["to_state"], to_state, "{e}");
        }
    }
}
