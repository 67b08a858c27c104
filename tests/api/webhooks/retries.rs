//! Retries on the configured schedule, dead letters with a `webhook_dead` case, and replay
//! (one delivery, and every dead one in bulk).

use serde_json::{json, Value};

use super::{
    assert_all_verified, attempt_codes, book, create_endpoint, deliveries, wait_deliveries, Hit,
    Receiver, FAST_RETRIES,
};
use crate::harness::{str_of, TestApp, World};

/// The receiver's requests carrying the booking `id`.
fn of_booking<'a>(hits: &'a [Hit], id: &str) -> Vec<&'a Hit> {
    hits.iter().filter(|h| h.booking() == id).collect()
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_attempt() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    rx.set_plan("/flaky", &[500, 500], 200).await;
    let secret = create_endpoint(
        &app,
        &pa.key,
        "flaky",
        &rx.url("/flaky"),
        &["booking.created"],
    )
    .await;
    rx.set_secrets("/flaky", &[&secret]).await;

    let (id, _) = book(&app, &w, pa, 0, "wh-flaky").await;
    let hits = rx
        .wait_on("a 200 on the third attempt", "/flaky", |h| {
            h.iter().any(|h| h.status == 200)
        })
        .await;
    assert_all_verified(&hits);
    let got: Vec<(u32, u16)> = hits.iter().map(|h| (h.attempt, h.status)).collect();
    assert_eq!(
        got,
        vec![(0, 500), (1, 500), (2, 200)],
        "three tries of one message (same webhook-id), the third answered 200"
    );
    assert!(
        hits.iter().all(|h| h.webhook_id == hits[0].webhook_id),
        "webhook-id changed across retries: {:?}",
        hits.iter().map(|h| &h.webhook_id).collect::<Vec<_>>()
    );
    assert!(
        hits.iter()
            .all(|h| h.booking() == id && h.body == hits[0].body),
        "the body changed across retries"
    );
    // retry_schedule = 300 ms twice, ±10 %: each retry comes at least ~270 ms after the last.
    for pair in hits.windows(2) {
        let gap = pair[1].at_ms - pair[0].at_ms;
        assert!(
            (250..2000).contains(&gap),
            "retry came {gap} ms after the previous attempt; the schedule says 300 ms ±10 %"
        );
    }

    let list = wait_deliveries(
        &app,
        &pa.key,
        "the delivery marked delivered",
        &format!("booking_id={id}"),
        |items| items.first().is_some_and(|d| d["status"] == "delivered"),
    )
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d["event"], "booking.created");
    assert_eq!(
        attempt_codes(d),
        vec![Some(500), Some(500), Some(200)],
        "attempts of {d}"
    );
    for a in d["attempts"].as_array().into_iter().flatten() {
        assert!(
            a["at"].is_string() && a["latency_ms"].is_u64(),
            "attempt {a}"
        );
        assert!(
            a["response"].as_str().is_some_and(|r| r.contains("status")),
            "the attempt keeps (a snippet of) the receiver's response: {a}"
        );
    }
    assert_eq!(
        deliveries(&app, &pa.key, "status=delivered&event=booking.created")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn an_always_failing_receiver_ends_dead_with_a_case_and_replay_delivers() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let op = app.operator_key("wh-agent", "agent").await;
    let rx = Receiver::start().await;
    rx.set_plan("/down", &[], 503).await;
    let secret = create_endpoint(
        &app,
        &pa.key,
        "down",
        &rx.url("/down"),
        &["booking.created"],
    )
    .await;
    rx.set_secrets("/down", &[&secret]).await;

    // Two bookings whose booking.created deliveries die after 1 + 2 attempts.
    let (a, _) = book(&app, &w, pa, 0, "wh-dead-a").await;
    let (b, _) = book(&app, &w, pa, 1, "wh-dead-b").await;
    let dead = wait_deliveries(
        &app,
        &pa.key,
        "both deliveries dead",
        "status=dead",
        |items| items.len() == 2,
    )
    .await;
    let hits = rx.hits_on("/down").await;
    assert_all_verified(&hits);
    for id in [&a, &b] {
        let d = dead
            .iter()
            .find(|d| d["booking_id"] == json!(id))
            .unwrap_or_else(|| panic!("no dead delivery for booking {id}: {dead:?}"));
        assert_eq!(
            attempt_codes(d),
            vec![Some(503); 3],
            "1 + len(retry_schedule) attempts, then dead: {d}"
        );
        let tries = of_booking(&hits, id);
        assert_eq!(tries.len(), 3, "the receiver got {} tries", tries.len());
        assert!(tries.iter().all(|h| h.webhook_id == tries[0].webhook_id));
    }

    // Each dead delivery opened a webhook_dead case the operators see.
    let cases = app
        .get("/v1/ops/exceptions?type=webhook_dead", Some(&op))
        .await
        .ok(200);
    let cases = cases["items"].as_array().cloned().unwrap_or_default();
    for id in [&a, &b] {
        assert!(
            cases
                .iter()
                .any(|c| c["booking_id"] == json!(id) && c["type"] == "webhook_dead"),
            "no webhook_dead case for booking {id}: {cases:?}"
        );
    }

    // The receiver recovers. Replay one delivery: it arrives with the same webhook-id.
    rx.set_plan("/down", &[], 200).await;
    let da = dead
        .iter()
        .find(|d| d["booking_id"] == json!(a))
        .expect("delivery of a");
    let da_id = str_of(&da["id"]);
    let r = app
        .post(
            &format!("/v1/webhook-deliveries/{da_id}/replay"),
            &pa.key,
            &json!({}),
        )
        .await;
    r.ok(202);
    let a_msg = of_booking(&hits, &a)[0].webhook_id.clone();
    rx.wait_on("the replayed delivery of a", "/down", |h| {
        h.iter().any(|h| h.webhook_id == a_msg && h.status == 200)
    })
    .await;
    let after = wait_deliveries(
        &app,
        &pa.key,
        "a's delivery delivered after the replay",
        &format!("booking_id={a}"),
        |items| items.first().is_some_and(|d| d["status"] == "delivered"),
    )
    .await;
    assert_eq!(
        attempt_codes(&after[0]),
        vec![Some(503), Some(503), Some(503), Some(200)],
        "a replay keeps the history and adds the new attempt: {}",
        after[0]
    );

    // Bulk replay: `since` in the future matches nothing; then every dead one (b's) goes.
    let r = app
        .post(
            "/v1/webhook-deliveries/replay",
            &pa.key,
            &json!({"status": "dead", "since": "2099-01-01T00:00:00Z"}),
        )
        .await
        .ok(202);
    assert_eq!(r["replayed"], 0, "since in the future: {r}");
    let r = app
        .post(
            "/v1/webhook-deliveries/replay",
            &pa.key,
            &json!({"status": "dead"}),
        )
        .await
        .ok(202);
    assert_eq!(r["replayed"], 1, "only b's delivery was still dead: {r}");
    let b_msg = of_booking(&hits, &b)[0].webhook_id.clone();
    rx.wait_on("the bulk-replayed delivery of b", "/down", |h| {
        h.iter().any(|h| h.webhook_id == b_msg && h.status == 200)
    })
    .await;
    wait_deliveries(
        &app,
        &pa.key,
        "no dead deliveries left",
        "status=dead",
        <[Value]>::is_empty,
    )
    .await;
    let all = rx.hits_on("/down").await;
    assert_all_verified(&all);
    assert_eq!(all.len(), 8, "3 + 3 failed tries, then one replay each");
    let r = app
        .post(
            "/v1/webhook-deliveries/replay",
            &pa.key,
            &json!({"status": "delivered"}),
        )
        .await;
    r.problem(400, "invalid_field");
}
