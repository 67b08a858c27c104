//! Retries on the configured schedule, dead letters with a `webhook_dead` case, and replay
//! (one delivery, and every dead one in bulk); a booking's later event waits for the earlier.

use serde_json::{json, Value};

use super::{
    assert_all_verified, attempt_codes, book, create_endpoint, deliveries, step, wait_deliveries,
    Hit, Receiver, FAST_RETRIES,
};
use crate::harness::{str_of, TestApp, World};

/// The receiver's requests about booking `id` with event type `ty`.
fn of<'a>(hits: &'a [Hit], id: &str, ty: &str) -> Vec<&'a Hit> {
    hits.iter()
        .filter(|h| h.booking() == id && h.ty() == ty)
        .collect()
}

/// Asserts `tries` are the retries of one message: same webhook-id and body.
#[track_caller]
fn one_message(tries: &[&Hit]) {
    assert!(!tries.is_empty(), "no tries at all");
    assert!(
        tries
            .iter()
            .all(|h| h.webhook_id == tries[0].webhook_id && h.body == tries[0].body),
        "webhook-id or body changed across retries: {:?}",
        tries
            .iter()
            .map(|h| (&h.webhook_id, &h.body))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_attempt() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    // Every message fails twice, then succeeds.
    rx.set_plan("/flaky", &[500, 500], 200).await;
    let secret = create_endpoint(
        &app,
        &pa.key,
        "flaky",
        &rx.url("/flaky"),
        &["booking.created", "booking.confirmed"],
    )
    .await;
    rx.set_secrets("/flaky", &[&secret]).await;

    let (id, prov) = book(&app, &w, pa, 0, "wh-flaky").await;
    step(&app, &prov, &id, "accept").await;
    let hits = rx
        .wait_on("both events answered 200", "/flaky", |h| {
            h.iter().filter(|h| h.status == 200).count() >= 2
        })
        .await;
    assert_all_verified(&hits);
    let created = of(&hits, &id, "booking.created");
    let confirmed = of(&hits, &id, "booking.confirmed");
    for (what, tries) in [("created", &created), ("confirmed", &confirmed)] {
        let got: Vec<(u32, u16)> = tries.iter().map(|h| (h.attempt, h.status)).collect();
        assert_eq!(
            got,
            vec![(0, 500), (1, 500), (2, 200)],
            "booking.{what}: three tries of one message (same webhook-id), the third answered 200"
        );
        one_message(tries);
        // retry_schedule = 300 ms twice, ±10 %: each retry ~270..330 ms after the last try.
        for pair in tries.windows(2) {
            let gap = pair[1].at_ms - pair[0].at_ms;
            assert!(
                (250..2000).contains(&gap),
                "booking.{what}: retry came {gap} ms after the previous try; the schedule says \
                 300 ms ±10 %"
            );
        }
    }
    // In commit order: booking.confirmed is not tried before booking.created got its 200.
    assert!(
        confirmed[0].seq > created[2].seq,
        "booking.confirmed was sent (request #{}) before booking.created was delivered \
         (request #{})",
        confirmed[0].seq,
        created[2].seq
    );

    let list = wait_deliveries(
        &app,
        &pa.key,
        "both deliveries marked delivered",
        &format!("booking_id={id}"),
        |items| items.len() == 2 && items.iter().all(|d| d["status"] == "delivered"),
    )
    .await;
    for d in &list {
        assert_eq!(
            attempt_codes(d),
            vec![Some(500), Some(500), Some(200)],
            "attempts of {d}"
        );
        for a in d["attempts"].as_array().into_iter().flatten() {
            assert!(
                a["at"].is_string() && a["latency_ms"].is_u64() && a["error"].is_null(),
                "attempt {a}"
            );
            assert!(
                a["response"].as_str().is_some_and(|r| r.contains("status")),
                "the attempt keeps (a snippet of) the receiver's response: {a}"
            );
        }
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
        &["booking.created", "booking.confirmed"],
    )
    .await;
    rx.set_secrets("/down", &[&secret]).await;

    // Booking a: created + confirmed; booking b: created. Each dies after 1 + 2 tries.
    let (a, prov_a) = book(&app, &w, pa, 0, "wh-dead-a").await;
    step(&app, &prov_a, &a, "accept").await;
    let (b, _) = book(&app, &w, pa, 1, "wh-dead-b").await;
    let dead = wait_deliveries(
        &app,
        &pa.key,
        "three deliveries dead",
        "status=dead",
        |items| items.len() == 3,
    )
    .await;
    let hits = rx.hits_on("/down").await;
    assert_all_verified(&hits);
    for (id, ty) in [
        (&a, "booking.created"),
        (&a, "booking.confirmed"),
        (&b, "booking.created"),
    ] {
        let d = dead
            .iter()
            .find(|d| d["booking_id"] == json!(id) && d["event"] == ty)
            .unwrap_or_else(|| panic!("no dead {ty} delivery for booking {id}: {dead:?}"));
        assert_eq!(
            attempt_codes(d),
            vec![Some(503); 3],
            "1 + len(retry_schedule) attempts, then dead: {d}"
        );
        let tries = of(&hits, id, ty);
        assert_eq!(
            tries.len(),
            3,
            "the receiver got {} tries of {ty}",
            tries.len()
        );
        one_message(&tries);
    }
    // The later event of a waited until the earlier one was dead.
    let a_created = of(&hits, &a, "booking.created");
    let a_confirmed = of(&hits, &a, "booking.confirmed");
    assert!(
        a_confirmed[0].seq > a_created[2].seq,
        "booking.confirmed was sent before booking.created's last try: {:?}",
        hits.iter()
            .map(|h| (h.seq, h.ty().to_string(), h.booking().to_string()))
            .collect::<Vec<_>>()
    );

    // Each dead delivery opened a webhook_dead case the operators see.
    let cases = app
        .get("/v1/ops/exceptions?type=webhook_dead", Some(&op))
        .await
        .ok(200);
    let cases = cases["items"].as_array().cloned().unwrap_or_default();
    for (id, n) in [(&a, 2), (&b, 1)] {
        let of_booking = cases
            .iter()
            .filter(|c| c["booking_id"] == json!(id) && c["type"] == "webhook_dead")
            .count();
        assert_eq!(
            of_booking, n,
            "webhook_dead cases for booking {id} (one per dead delivery): {cases:?}"
        );
    }

    // The receiver recovers. Replay one delivery: it arrives with the same webhook-id.
    rx.set_plan("/down", &[], 200).await;
    let da = dead
        .iter()
        .find(|d| d["booking_id"] == json!(a) && d["event"] == "booking.created")
        .expect("dead delivery of a's booking.created");
    let da_id = str_of(&da["id"]);
    app.post(
        &format!("/v1/webhook-deliveries/{da_id}/replay"),
        &pa.key,
        &json!({}),
    )
    .await
    .ok(202);
    let a_msg = a_created[0].webhook_id.clone();
    rx.wait_on("the replayed delivery", "/down", |h| {
        h.iter().any(|h| h.webhook_id == a_msg && h.status == 200)
    })
    .await;
    let after = wait_deliveries(
        &app,
        &pa.key,
        "the replayed delivery delivered",
        &format!("booking_id={a}&event=booking.created"),
        |items| items.first().is_some_and(|d| d["status"] == "delivered"),
    )
    .await;
    assert_eq!(
        attempt_codes(&after[0]),
        vec![Some(503), Some(503), Some(503), Some(200)],
        "a replay keeps the history and adds the new attempt: {}",
        after[0]
    );
    assert_eq!(
        deliveries(&app, &pa.key, "status=dead").await.len(),
        2,
        "a single replay re-sends only that delivery"
    );

    // Bulk replay: `since` in the future matches nothing; then every dead one goes.
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
    assert_eq!(r["replayed"], 2, "the two deliveries still dead: {r}");
    let b_msg = of(&hits, &b, "booking.created")[0].webhook_id.clone();
    let c_msg = a_confirmed[0].webhook_id.clone();
    rx.wait_on("the bulk-replayed deliveries", "/down", |h| {
        [&b_msg, &c_msg]
            .iter()
            .all(|m| h.iter().any(|h| &&h.webhook_id == m && h.status == 200))
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
    assert_eq!(all.len(), 12, "3 × 3 failed tries, then one replay each");
    app.post(
        "/v1/webhook-deliveries/replay",
        &pa.key,
        &json!({"status": "delivered"}),
    )
    .await
    .problem(400, "invalid_field");
}
