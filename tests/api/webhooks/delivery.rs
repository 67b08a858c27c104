//! Delivery: a booking's whole life arrives in commit order, signed; event filters; 410 Gone
//! disables the endpoint; an idle dispatcher sends new and replayed deliveries at once.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    assert_all_verified, attempt_codes, book, create_endpoint, deliveries, get_endpoint, step,
    wait_deliveries, Receiver, FAST_RETRIES, LIFE, WAIT,
};
use crate::harness::{eventually, now_ms, str_of, TestApp, World};

#[tokio::test]
async fn a_bookings_life_arrives_in_order_signed_and_complete() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    let all = create_endpoint(&app, &pa.key, "all", &rx.url("/all"), &["*"]).await;
    let done = create_endpoint(
        &app,
        &pa.key,
        "done",
        &rx.url("/done"),
        &["booking.completed"],
    )
    .await;
    assert_ne!(all, done, "two endpoints got the same secret");
    rx.set_secrets("/all", &[&all]).await;
    rx.set_secrets("/done", &[&done]).await;

    let (id, prov) = book(&app, &w, pa, 0, "wh-life").await;
    let confirmed = step(&app, &prov, &id, "accept").await;
    step(&app, &prov, &id, "started").await;
    step(&app, &prov, &id, "completed").await;

    let hits = rx
        .wait_on("the four events of the booking on /all", "/all", |h| {
            h.len() >= 4
        })
        .await;
    let done_hits = rx
        .wait_on("booking.completed on /done", "/done", |h| !h.is_empty())
        .await;
    // Nothing more may trickle in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits_after = rx.hits_on("/all").await;
    assert_eq!(
        hits_after.len(),
        4,
        "a receiver answering 200 got more than one request per event: {:?}",
        hits_after
            .iter()
            .map(|h| (h.ty().to_string(), h.webhook_id.clone()))
            .collect::<Vec<_>>()
    );
    assert_all_verified(&hits);
    assert_all_verified(&done_hits);

    let types: Vec<&str> = hits.iter().map(|h| h.ty()).collect();
    assert_eq!(types, LIFE, "events arrived out of commit order");
    let states = ["pending_provider", "confirmed", "in_progress", "completed"];
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (h, state) in hits.iter().zip(states) {
        let body = h.json();
        assert_eq!(h.partner_id.as_deref(), Some("pa"), "partner_id of {body}");
        assert_eq!(h.booking(), id, "data.id of {body}");
        assert_eq!(h.state.as_deref(), Some(state), "data.state of {body}");
        assert_eq!(body["data"]["member_id"], pa.members[0], "data of {body}");
        assert!(
            h.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "content-type {:?}",
            h.content_type
        );
        let occurred = str_of(&body["occurred_at"]);
        OffsetDateTime::parse(&occurred, &Rfc3339)
            .unwrap_or_else(|e| panic!("occurred_at {occurred:?} is not RFC 3339: {e}"));
        assert!(h.occurred_at.is_some());
        let ts: i64 = h
            .webhook_timestamp
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("webhook-timestamp {:?}", h.webhook_timestamp));
        assert!(
            (ts - now).abs() < 60,
            "webhook-timestamp {ts} is not now ({now})"
        );
        assert_eq!(
            h.signatures.len(),
            1,
            "one secret, one signature: {:?}",
            h.signatures
        );
        assert!(
            h.signatures[0].starts_with("v1,"),
            "signature {:?}",
            h.signatures[0]
        );
    }
    assert_eq!(
        hits[1].json()["data"]["provider_id"],
        confirmed["provider_id"],
        "booking.confirmed carries the booking view"
    );
    let ids: HashSet<&str> = hits.iter().map(|h| h.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "webhook-ids are not distinct per event");
    let events: HashSet<Option<&str>> = hits.iter().map(|h| h.event_id.as_deref()).collect();
    assert_eq!(events.len(), 4, "event ids are not distinct");

    // The filtered endpoint got only booking.completed, the same event as /all.
    assert_eq!(done_hits.len(), 1, "/done got {done_hits:?}");
    assert_eq!(done_hits[0].ty(), "booking.completed");
    assert_eq!(done_hits[0].event_id, hits[3].event_id);
    assert_ne!(
        done_hits[0].webhook_id, hits[3].webhook_id,
        "one delivery per endpoint, each with its own webhook-id"
    );

    // The partner sees five delivered deliveries (4 + 1), each with one 200 attempt.
    let list = wait_deliveries(
        &app,
        &pa.key,
        "all deliveries delivered",
        &format!("booking_id={id}"),
        |items| items.len() == 5 && items.iter().all(|d| d["status"] == "delivered"),
    )
    .await;
    for d in &list {
        assert_eq!(attempt_codes(d), vec![Some(200)], "attempts of {d}");
        let a = &d["attempts"][0];
        assert!(a["latency_ms"].is_u64(), "attempt without latency_ms: {a}");
        assert!(a["at"].is_string(), "attempt without at: {a}");
        assert!(a["error"].is_null(), "a 200 attempt with an error: {a}");
        assert!(a.get("response").is_some(), "attempt without response: {a}");
    }
    let delivered_events: HashSet<&str> = list
        .iter()
        .map(|d| d["event_id"].as_str().unwrap_or_default())
        .collect();
    for h in hits.iter().chain(&done_hits) {
        assert!(
            delivered_events.contains(h.event_id.as_deref().unwrap_or_default()),
            "received event {:?} is not among the listed deliveries",
            h.event_id
        );
    }
    let completed = deliveries(
        &app,
        &pa.key,
        &format!("booking_id={id}&event=booking.completed"),
    )
    .await;
    assert_eq!(completed.len(), 2, "event filter: {completed:?}");
    assert!(
        deliveries(&app, &pa.key, &format!("booking_id={id}&status=pending"))
            .await
            .is_empty()
    );
    assert!(
        deliveries(&app, &pa.key, &format!("booking_id={id}&status=dead"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_410_gone_disables_the_endpoint_and_later_events_are_not_sent() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    rx.set_plan("/gone", &[], 410).await;
    let gone = create_endpoint(&app, &pa.key, "gone", &rx.url("/gone"), &["*"]).await;
    let ok = create_endpoint(&app, &pa.key, "ok", &rx.url("/ok"), &["*"]).await;
    rx.set_secrets("/gone", &[&gone]).await;
    rx.set_secrets("/ok", &[&ok]).await;
    let before = get_endpoint(&app, &pa.key, "gone").await.ok(200);
    assert_eq!(
        before["enabled"], true,
        "a new endpoint is enabled: {before}"
    );

    let (id, prov) = book(&app, &w, pa, 1, "wh-gone").await;
    rx.wait_on("booking.created on /gone", "/gone", |h| !h.is_empty())
        .await;
    let ep = eventually("the endpoint disabled after 410", WAIT, || async {
        let ep = get_endpoint(&app, &pa.key, "gone").await.ok(200);
        (ep["enabled"] == false).then_some(ep)
    })
    .await;
    assert_eq!(ep["enabled"], false, "{ep}");

    step(&app, &prov, &id, "accept").await;
    step(&app, &prov, &id, "started").await;
    rx.wait_on("three events on the healthy endpoint", "/ok", |h| {
        h.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let gone_hits = rx.hits_on("/gone").await;
    assert_all_verified(&gone_hits);
    assert_eq!(
        gone_hits
            .iter()
            .map(|h| (h.ty().to_string(), h.status))
            .collect::<Vec<_>>(),
        vec![("booking.created".to_string(), 410)],
        "after 410 Gone the endpoint must get nothing more (no retry, no later events)"
    );
    let ok_hits = rx.hits_on("/ok").await;
    assert_all_verified(&ok_hits);
    let ok_types: Vec<&str> = ok_hits.iter().map(|h| h.ty()).collect();
    assert_eq!(ok_types, &LIFE[..3], "the healthy endpoint keeps receiving");

    // The 410 delivery was tried once; nothing later is pending or sent for the disabled one.
    let list = deliveries(&app, &pa.key, &format!("booking_id={id}")).await;
    let to_gone: Vec<&Value> = list.iter().filter(|d| d["endpoint_id"] == "gone").collect();
    let created = to_gone
        .iter()
        .find(|d| d["event"] == "booking.created")
        .unwrap_or_else(|| panic!("no booking.created delivery to the 410 endpoint: {list:?}"));
    assert_eq!(attempt_codes(created), vec![Some(410)], "{created}");
    assert_ne!(created["status"], "pending", "{created}");
    for d in &to_gone {
        assert!(
            d["event"] == "booking.created" || d["attempts"].as_array().is_some_and(Vec::is_empty),
            "a later event was attempted against the disabled endpoint: {d}"
        );
    }
}

/// How soon after its commit an idle dispatcher must have sent a delivery. A healthy send
/// takes a few ms; the dispatcher's idle sleep is 5 s, so a missed wake-up shows clearly.
const PROMPT: Duration = Duration::from_millis(2500);

/// The outbox is read as soon as a commit adds to it. Latencies of ~5 s (the dispatcher's idle
/// sleep) mean it was woken before the rows were committed, found nothing, and slept.
#[tokio::test]
async fn an_idle_dispatcher_sends_new_and_replayed_deliveries_promptly() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    let secret = create_endpoint(
        &app,
        &pa.key,
        "prompt",
        &rx.url("/prompt"),
        &["booking.created"],
    )
    .await;
    rx.set_secrets("/prompt", &[&secret]).await;

    // One event at a time, each committed while the dispatcher has nothing to do.
    let mut latencies = Vec::new();
    let mut last = String::new();
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (id, _) = book(
            &app,
            &w,
            pa,
            i % pa.members.len(),
            &format!("wh-prompt-{i}"),
        )
        .await;
        let committed = now_ms();
        let what = format!(
            "booking.created #{i} sent within {PROMPT:?} of its commit (latencies so far {latencies:?} ms)"
        );
        let id_ref = &id;
        let rx_ref = &rx;
        let hit = eventually(&what, PROMPT, || async move {
            rx_ref
                .hits_on("/prompt")
                .await
                .into_iter()
                .find(|h| h.booking() == id_ref)
        })
        .await;
        latencies.push(hit.at_ms - committed);
        last = id;
    }

    // A replay is "re-send now": it too goes out at once.
    let d = wait_deliveries(
        &app,
        &pa.key,
        "the last delivery delivered",
        &format!("booking_id={last}"),
        |items| items.first().is_some_and(|d| d["status"] == "delivered"),
    )
    .await;
    let delivery = str_of(&d[0]["id"]);
    for n in 2..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.post(
            &format!("/v1/webhook-deliveries/{delivery}/replay"),
            &pa.key,
            &serde_json::json!({}),
        )
        .await
        .ok(202);
        let what = format!("replay #{} of a delivery sent within {PROMPT:?}", n - 1);
        let last_ref = &last;
        let rx_ref = &rx;
        eventually(&what, PROMPT, || async move {
            let n_hits = rx_ref
                .hits_on("/prompt")
                .await
                .iter()
                .filter(|h| h.booking() == last_ref)
                .count();
            (n_hits >= n).then_some(())
        })
        .await;
    }
    assert_all_verified(&rx.hits_on("/prompt").await);
}
