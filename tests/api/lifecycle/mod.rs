//! A booking's life: create, provider events, re-routing, cancel, no-show, reschedule, lists.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::harness::{str_of, TestApp, World, BLR_FULL, SLOT_END, SLOT_START};

mod listing;
mod races;

fn version(b: &Value) -> i64 {
    b["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("booking without integer version: {b}"))
}

fn instant(v: &Value) -> OffsetDateTime {
    let s = str_of(v);
    OffsetDateTime::parse(&s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// The `to_state` values of a timeline, in order, skipping entries without one.
fn to_states(timeline: &Value) -> Vec<String> {
    timeline["items"]
        .as_array()
        .expect("timeline items")
        .iter()
        .filter_map(|e| e["to_state"].as_str().map(str::to_string))
        .collect()
}

/// Asserts `want` appears in `have` in this order (other entries may sit in between).
#[track_caller]
fn assert_subsequence(have: &[String], want: &[&str]) {
    let mut it = have.iter();
    for w in want {
        assert!(
            it.any(|h| h == w),
            "timeline to_states {have:?} do not contain {want:?} in order"
        );
    }
}

fn sla_state<'a>(b: &'a Value, kind: &str) -> Option<&'a str> {
    b["sla"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == kind)?
        .get("state")?
        .as_str()
}
#[tokio::test]
async fn booking_goes_from_create_to_completed_via_started() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    let created = app
        .create_booking(&pa.key, &pa.booking(0, "life-started"))
        .await
        .ok(201);
    assert_eq!(created["state"], "pending_provider", "{created}");
    assert_eq!(created["member_id"], pa.members[0].as_str());
    assert_eq!(created["partner_ref"], "life-started");
    assert_eq!(created["services"], json!(["CBC", "LIPID"]));
    let id = str_of(&created["id"]);
    let pid = str_of(&created["provider_id"]);
    assert!(BLR_FULL.contains(&pid.as_str()), "routed to {pid}");
    assert_eq!(created["routing"]["provider_id"], pid.as_str(), "{created}");
    let gross = w.gross(&pid, &["CBC", "LIPID"]);
    let amounts = &created["amounts"];
    assert_eq!(amounts["gross_paise"], gross, "amounts {amounts}");
    assert_eq!(
        amounts["covered_paise"].as_i64().unwrap_or(-1)
            + amounts["copay_paise"].as_i64().unwrap_or(-1),
        gross,
        "covered + copay != gross: {amounts}"
    );
    assert_eq!(amounts["copay_paise"], 0, "policy has no copay: {amounts}");
    assert_eq!(
        sla_state(&created, "acceptance"),
        Some("pending"),
        "{}",
        created["sla"]
    );

    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "pending_provider");
    assert_eq!(got["version"], created["version"]);
    assert_eq!(got["provider_id"], pid.as_str());

    let key = &w.provider(&pid).key;
    let mut v = version(&created);
    let steps = [
        (json!({"type": "accept"}), "confirmed"),
        (json!({"type": "started"}), "in_progress"),
        (
            json!({"type": "report_ready", "report_url": "https://reports.example.com/r1.pdf"}),
            "in_progress",
        ),
        (json!({"type": "completed"}), "completed"),
    ];
    for (event, state) in steps {
        let b = app.provider_event_with(key, &id, &event).await.ok(200);
        assert_eq!(b["state"], state, "after {event}: {b}");
        assert!(
            version(&b) > v,
            "version did not increase after {event}: {b}"
        );
        v = version(&b);
        let got = app.get_booking(&pa.key, &id).await.ok(200);
        assert_eq!(got["state"], state, "GET after {event}: {got}");
        assert_eq!(version(&got), v, "GET version after {event}: {got}");
    }
    let done = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(
        done["report_url"], "https://reports.example.com/r1.pdf",
        "{done}"
    );
    assert_eq!(done["provider_id"], pid.as_str());
    assert_eq!(
        sla_state(&done, "acceptance"),
        Some("met"),
        "{}",
        done["sla"]
    );
    assert!(
        instant(&done["updated_at"]) >= instant(&done["created_at"]),
        "updated_at before created_at: {done}"
    );

    let tl = app.timeline(&pa.key, &id).await.ok(200);
    let items = tl["items"].as_array().expect("timeline items");
    assert!(items.len() >= 5, "timeline too short: {tl}");
    for pair in items.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a["seq"].as_u64().expect("seq") < b["seq"].as_u64().expect("seq"),
            "timeline seq not increasing: {a} then {b}"
        );
        assert!(
            instant(&a["at"]) <= instant(&b["at"]),
            "timeline not oldest first: {a} then {b}"
        );
    }
    assert_subsequence(
        &to_states(&tl),
        &["pending_provider", "confirmed", "in_progress", "completed"],
    );
}

#[tokio::test]
async fn sample_collected_path_completes_and_provider_lists_it() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let created = app
        .create_booking(&pa.key, &pa.booking(1, "life-sample"))
        .await
        .ok(201);
    let id = str_of(&created["id"]);
    let prov = w.provider(&str_of(&created["provider_id"]));

    let pending = app
        .provider_bookings(&prov.key, Some("pending_provider"))
        .await
        .ok(200);
    let ids: Vec<&str> = pending["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, vec![id.as_str()], "provider's pending list: {pending}");

    let mut v = version(&created);
    for (event, state) in [
        ("accept", "confirmed"),
        ("sample_collected", "in_progress"),
        ("report_ready", "in_progress"),
        ("completed", "completed"),
    ] {
        let b = app.provider_event(&prov.key, &id, event).await.ok(200);
        assert_eq!(b["state"], state, "after {event}: {b}");
        assert!(
            version(&b) > v,
            "version did not increase after {event}: {b}"
        );
        v = version(&b);
    }
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "completed");
    assert_eq!(version(&got), v);
    let done = app
        .provider_bookings(&prov.key, Some("completed"))
        .await
        .ok(200);
    assert!(
        done["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|b| b["id"] == id.as_str()),
        "completed booking missing from provider list: {done}"
    );
    let tl = app.timeline(&pa.key, &id).await.ok(200);
    assert_subsequence(&to_states(&tl), &["confirmed", "in_progress", "completed"]);
}

#[tokio::test]
async fn mumbai_address_routes_to_the_mumbai_lab() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let mut body = pa.booking_for(&pa.mumbai_member, &["CBC"], "life-mumbai");
    body["address"] = json!({"pincode": "400001", "lat": 18.9310, "lon": 72.8310});
    let b = app.create_booking(&pa.key, &body).await.ok(201);
    assert_eq!(b["provider_id"], "mum-lab-1", "{b}");
    assert_eq!(
        b["amounts"]["gross_paise"],
        w.gross("mum-lab-1", &["CBC"]),
        "{b}"
    );
}

#[tokio::test]
async fn reject_reroutes_to_the_next_provider_then_fails() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let created = app
        .create_booking(&pa.key, &pa.booking(0, "life-reject"))
        .await
        .ok(201);
    let id = str_of(&created["id"]);
    let p1 = str_of(&created["provider_id"]);
    assert!(BLR_FULL.contains(&p1.as_str()), "first provider {p1}");
    let attempt1 = created["routing"]["attempt"].as_i64();

    let body = json!({"type": "reject", "reason": "no phlebotomist"});
    let b = app
        .provider_event_with(&w.provider(&p1).key, &id, &body)
        .await
        .ok(200);
    assert_eq!(b["state"], "pending_provider", "after first reject: {b}");
    let p2 = str_of(&b["provider_id"]);
    assert_ne!(p1, p2, "reject did not re-route: {b}");
    assert!(
        BLR_FULL.contains(&p2.as_str()),
        "re-routed to {p2}, which cannot serve it"
    );
    assert!(version(&b) > version(&created));
    // The provider's answer may be a provider-scoped view; routing is read as the partner.
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["provider_id"], p2.as_str(), "{got}");
    assert!(
        got["routing"]["attempt"].as_i64() > attempt1,
        "routing.attempt did not grow: before {attempt1:?}; booking after the reject: {got}"
    );

    // The first provider no longer sees the booking.
    app.provider_event(&w.provider(&p1).key, &id, "accept")
        .await
        .problem(404, "not_found");

    let b = app
        .provider_event_with(&w.provider(&p2).key, &id, &body)
        .await
        .ok(200);
    assert_eq!(
        b["state"], "failed",
        "after the last candidate rejected: {b}"
    );
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "failed");
    let tl = app.timeline(&pa.key, &id).await.ok(200);
    assert_eq!(
        to_states(&tl).last().map(String::as_str),
        Some("failed"),
        "{tl}"
    );

    // Every routing attempt is kept; a CBC + LIPID booking never goes to a lab that is
    // inactive, lacks LIPID, or does not serve 560001.
    let routing = app
        .get(&format!("/v1/bookings/{id}/routing"), Some(&pa.key))
        .await
        .ok(200);
    let attempts = routing
        .as_array()
        .or_else(|| routing["items"].as_array())
        .unwrap_or_else(|| panic!("routing is neither a list nor {{items}}: {routing}"));
    assert!(attempts.len() >= 2, "routing attempts: {routing}");
    assert_eq!(attempts[0]["provider_id"], p1.as_str(), "{routing}");
    assert_eq!(attempts[1]["provider_id"], p2.as_str(), "{routing}");
    for attempt in attempts {
        for c in attempt["candidates"].as_array().into_iter().flatten() {
            let cid = str_of(&c["provider_id"]);
            assert!(
                BLR_FULL.contains(&cid.as_str()),
                "{cid} is a candidate: {attempt}"
            );
        }
    }
}
#[tokio::test]
async fn cancel_from_pending_and_from_confirmed() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    let pending = app
        .create_booking(&pa.key, &pa.booking(0, "cancel-pending"))
        .await
        .ok(201);
    let id = str_of(&pending["id"]);
    let prov = w.provider(&str_of(&pending["provider_id"]));
    let b = app
        .cancel_booking(&pa.key, &id, "member travelling")
        .await
        .ok(200);
    assert_eq!(b["state"], "cancelled", "{b}");
    assert!(version(&b) > version(&pending));
    assert_eq!(
        app.get_booking(&pa.key, &id).await.ok(200)["state"],
        "cancelled"
    );
    // Terminal: neither the partner nor the provider can move it any more.
    app.cancel_booking(&pa.key, &id, "again")
        .await
        .problem(409, "invalid_transition");
    app.provider_event(&prov.key, &id, "accept")
        .await
        .problem(409, "invalid_transition");
    let after = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(after["state"], "cancelled");
    assert_eq!(version(&after), version(&b));

    let c = app
        .create_booking(&pa.key, &pa.booking(1, "cancel-confirmed"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let prov = w.provider(&str_of(&c["provider_id"]));
    let acc = app.provider_event(&prov.key, &id, "accept").await.ok(200);
    assert_eq!(acc["state"], "confirmed");
    let b = app
        .cancel_booking(&pa.key, &id, "changed mind")
        .await
        .ok(200);
    assert_eq!(b["state"], "cancelled", "{b}");
    assert!(version(&b) > version(&acc));
    let tl = app.timeline(&pa.key, &id).await.ok(200);
    assert_subsequence(&to_states(&tl), &["confirmed", "cancelled"]);
    let entry = tl["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["to_state"] == "cancelled")
        .expect("cancel entry");
    assert_eq!(entry["reason"], "changed mind", "cancel entry: {entry}");
    assert_eq!(entry["actor"]["kind"], "partner", "cancel entry: {entry}");
    assert_eq!(
        entry["actor"]["id"],
        pa.id.as_str(),
        "cancel entry: {entry}"
    );
    let accept = tl["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["to_state"] == "confirmed")
        .expect("accept entry");
    assert_eq!(
        accept["actor"]["kind"], "provider",
        "accept entry: {accept}"
    );
    assert_eq!(
        accept["actor"]["id"],
        prov.id.as_str(),
        "accept entry: {accept}"
    );
    assert_eq!(
        accept["target"]["id"],
        id.as_str(),
        "accept entry: {accept}"
    );
}

#[tokio::test]
async fn provider_marks_no_show() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "noshow"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let prov = w.provider(&str_of(&c["provider_id"]));
    app.provider_event(&prov.key, &id, "accept").await.ok(200);
    let body = json!({"type": "no_show", "reason": "nobody home"});
    let b = app.provider_event_with(&prov.key, &id, &body).await.ok(200);
    assert_eq!(b["state"], "no_show", "{b}");
    assert_eq!(
        app.get_booking(&pa.key, &id).await.ok(200)["state"],
        "no_show"
    );
    app.provider_event(&prov.key, &id, "started")
        .await
        .problem(409, "invalid_transition");
}

#[tokio::test]
async fn reschedule_moves_the_slot() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "resched"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    assert_eq!(instant(&c["slot"]["start"]), instant(&json!(SLOT_START)));
    assert_eq!(instant(&c["slot"]["end"]), instant(&json!(SLOT_END)));

    let (start, end) = ("2030-01-02T11:00:00Z", "2030-01-02T12:00:00Z");
    let b = app.reschedule(&pa.key, &id, start, end).await.ok(200);
    assert_eq!(instant(&b["slot"]["start"]), instant(&json!(start)), "{b}");
    assert_eq!(instant(&b["slot"]["end"]), instant(&json!(end)), "{b}");
    assert!(version(&b) > version(&c));
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(
        instant(&got["slot"]["start"]),
        instant(&json!(start)),
        "{got}"
    );
    assert_eq!(instant(&got["slot"]["end"]), instant(&json!(end)), "{got}");
    assert!(
        ["pending_provider", "confirmed"].contains(&got["state"].as_str().unwrap_or("")),
        "state after reschedule: {got}"
    );
}

/// The last `sla` entry of `kind` (panics if there is none).
#[track_caller]
fn sla_entry<'a>(b: &'a Value, kind: &str) -> &'a Value {
    b["sla"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|e| e["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} SLA entry: {}", b["sla"]))
}

/// Asserts `got` is within 5 s of `want`.
#[track_caller]
fn assert_close(what: &str, got: OffsetDateTime, want: OffsetDateTime) {
    let off = (got - want).abs();
    assert!(
        off <= time::Duration::seconds(5),
        "{what}: {got} is {off} away from {want}"
    );
}

#[tokio::test]
async fn sla_windows_follow_the_contract() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "sla-windows"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let key = &w.provider(&str_of(&c["provider_id"])).key;
    let minutes = time::Duration::minutes;

    // Acceptance: 30 min from creation (accept_within), at risk at 80 %.
    let created = instant(&c["created_at"]);
    let acc = sla_entry(&c, "acceptance");
    assert_eq!(acc["state"], "pending", "{acc}");
    assert_close(
        "acceptance due_at",
        instant(&acc["due_at"]),
        created + minutes(30),
    );
    assert_close(
        "acceptance at_risk_at",
        instant(&acc["at_risk_at"]),
        created + minutes(24),
    );

    // Fulfilment: from accept to slot end + fulfil_grace (2h).
    let b = app.provider_event(key, &id, "accept").await.ok(200);
    assert_eq!(sla_entry(&b, "acceptance")["state"], "met", "{}", b["sla"]);
    let accepted = instant(&b["updated_at"]);
    let f = sla_entry(&b, "fulfilment");
    assert_eq!(f["state"], "pending", "{f}");
    let due = instant(&f["due_at"]);
    assert_eq!(
        due,
        instant(&json!(SLOT_END)) + time::Duration::hours(2),
        "{f}"
    );
    assert_close(
        "fulfilment at_risk_at",
        instant(&f["at_risk_at"]),
        accepted + (due - accepted) * 0.8,
    );

    // Report: from `started` to + the longest report_tat of the services (LIPID, 48h).
    let b = app.provider_event(key, &id, "started").await.ok(200);
    assert_eq!(sla_entry(&b, "fulfilment")["state"], "met", "{}", b["sla"]);
    let started = instant(&b["updated_at"]);
    let r = sla_entry(&b, "report");
    assert_eq!(r["state"], "pending", "{r}");
    assert_close(
        "report due_at",
        instant(&r["due_at"]),
        started + time::Duration::hours(48),
    );

    let b = app.provider_event(key, &id, "report_ready").await.ok(200);
    assert_eq!(sla_entry(&b, "report")["state"], "met", "{}", b["sla"]);
}
