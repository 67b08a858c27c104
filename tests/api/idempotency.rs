//! `Idempotency-Key`: replays are byte-identical, conflicting reuse is refused, concurrent
//! duplicates make one booking, keys are scoped per principal.

use futures::future::join_all;
use serde_json::json;

use crate::harness::{str_of, TestApp, World};

#[tokio::test]
async fn replay_returns_the_same_status_and_body_bytes() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let body = pa.booking(0, "idem-replay");

    let first = app.create_booking_idem(&pa.key, "k-replay", &body).await;
    let created = first.ok(201);
    let second = app.create_booking_idem(&pa.key, "k-replay", &body).await;
    assert_eq!(second.status, 201, "replay status; body {}", second.text());
    assert_eq!(
        second.text(),
        first.text(),
        "replayed body differs from the original"
    );
    assert_eq!(
        second.header("idempotent-replayed").as_deref(),
        Some("true"),
        "replay lacks `idempotent-replayed: true`"
    );
    let items = app
        .list_all_bookings(&pa.key, "partner_ref=idem-replay")
        .await;
    assert_eq!(items.len(), 1, "replay made another booking: {items:?}");
    assert_eq!(items[0]["id"], created["id"]);

    // The replay does not depend on the current state: after an accept the same create
    // key still returns the original 201 body.
    let id = str_of(&created["id"]);
    let prov = w.provider(&str_of(&created["provider_id"]));
    app.provider_event(&prov.key, &id, "accept").await.ok(200);
    let third = app.create_booking_idem(&pa.key, "k-replay", &body).await;
    assert_eq!(third.status, 201);
    assert_eq!(
        third.text(),
        first.text(),
        "replay after a state change differs"
    );
}

#[tokio::test]
async fn same_key_with_a_different_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    app.create_booking_idem(&pa.key, "k-conflict", &pa.booking(0, "idem-a"))
        .await
        .ok(201);
    app.create_booking_idem(&pa.key, "k-conflict", &pa.booking(0, "idem-b"))
        .await
        .problem(422, "idempotency_conflict");
    assert!(app
        .list_all_bookings(&pa.key, "partner_ref=idem-b")
        .await
        .is_empty());
    assert_eq!(app.list_all_bookings(&pa.key, "").await.len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_duplicates_make_one_booking() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let body = pa.booking(1, "idem-race");
    let resps = join_all((0..20).map(|_| app.create_booking_idem(&pa.key, "k-race", &body))).await;

    let created: Vec<_> = resps.iter().filter(|r| r.status == 201).collect();
    for r in &resps {
        if r.status != 201 {
            // The contract allows a waiter to give up after a few seconds.
            r.problem(409, "request_in_progress");
        }
    }
    assert!(!created.is_empty(), "no request succeeded");
    for r in &created {
        assert_eq!(
            r.text(),
            created[0].text(),
            "two different 201 bodies for one key"
        );
    }
    let items = app
        .list_all_bookings(&pa.key, "partner_ref=idem-race")
        .await;
    assert_eq!(
        items.len(),
        1,
        "20 requests with one key made {} bookings",
        items.len()
    );
    assert_eq!(items[0]["id"], created[0].json()["id"]);
}

#[tokio::test]
async fn keys_are_scoped_per_principal() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let pb = World::add_partner(&app, "pb").await;
    let a = app
        .create_booking_idem(&pa.key, "shared-key", &pa.booking(0, "scoped-a"))
        .await
        .ok(201);
    // Same key, other partner, other body: neither a replay of A's booking nor a conflict.
    let b = app
        .create_booking_idem(&pb.key, "shared-key", &pb.booking(0, "scoped-b"))
        .await
        .ok(201);
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["member_id"], pb.members[0].as_str());
    assert_eq!(app.list_all_bookings(&pb.key, "").await.len(), 1);
}

#[tokio::test]
async fn provider_events_and_cancels_replay_instead_of_conflicting() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "idem-events"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let prov = w.provider(&str_of(&c["provider_id"]));
    let path = format!("/v1/provider/bookings/{id}/events");
    let accept = json!({"type": "accept"});

    let first = app.post_idem(&path, &prov.key, "acc-1", &accept).await;
    let v = first.ok(200)["version"].clone();
    let again = app.post_idem(&path, &prov.key, "acc-1", &accept).await;
    assert_eq!(again.status, 200, "replayed accept: {}", again.text());
    assert_eq!(again.text(), first.text(), "replayed accept body differs");
    // Without the key, a second accept is a real (illegal) transition.
    app.provider_event(&prov.key, &id, "accept")
        .await
        .problem(409, "invalid_transition");
    assert_eq!(app.get_booking(&pa.key, &id).await.ok(200)["version"], v);

    let cancel_path = format!("/v1/bookings/{id}/cancel");
    let reason = json!({"reason": "double click"});
    let first = app
        .post_idem(&cancel_path, &pa.key, "cancel-1", &reason)
        .await;
    assert_eq!(first.ok(200)["state"], "cancelled");
    let again = app
        .post_idem(&cancel_path, &pa.key, "cancel-1", &reason)
        .await;
    assert_eq!(again.status, 200, "replayed cancel: {}", again.text());
    assert_eq!(again.text(), first.text());
}

#[tokio::test]
async fn replay_survives_a_crash() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let body = pa.booking(2, "idem-crash");
    let first = app.create_booking_idem(&pa.key, "k-crash", &body).await;
    first.ok(201);
    app.kill9().await;
    app.restart().await;

    let again = app.create_booking_idem(&pa.key, "k-crash", &body).await;
    assert_eq!(again.status, 201, "replay after restart: {}", again.text());
    assert_eq!(again.text(), first.text(), "replay after restart differs");
    app.create_booking_idem(&pa.key, "k-crash", &pa.booking(2, "idem-crash-2"))
        .await
        .problem(422, "idempotency_conflict");
    let items = app.list_all_bookings(&pa.key, "").await;
    assert_eq!(
        items.len(),
        1,
        "replay after restart made a booking: {items:?}"
    );
}
