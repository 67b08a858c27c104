//! The outbox survives SIGKILL: events committed while the receiver was down are all
//! delivered after a restart, at least once, each booking's in commit order.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{assert_all_verified, closed_port, create_endpoint, deliveries, Receiver};
use crate::harness::{eventually, str_of, Partner, TestApp, World};

const BOOKINGS: usize = 30;

/// Short steps, enough of them (~16 s) that nothing dies while the receiver is down.
fn config() -> String {
    let mut steps = vec!["100ms", "200ms"];
    steps.extend(std::iter::repeat_n("500ms", 32));
    let steps: Vec<String> = steps.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[webhooks]\nretry_schedule = [{}]\n", steps.join(", "))
}

/// Booking `i`'s planned moves: how far it goes, so the events differ per booking.
fn plan(i: usize) -> &'static [&'static str] {
    match i % 5 {
        0 => &[],
        1 => &["accept"],
        2 => &["accept", "started"],
        3 => &["accept", "started", "completed"],
        _ => &["accept", "cancel"],
    }
}

fn event_of(mv: &str) -> &'static str {
    match mv {
        "accept" => "booking.confirmed",
        "started" => "booking.in_progress",
        "completed" => "booking.completed",
        "cancel" => "booking.cancelled",
        other => panic!("no event for {other}"),
    }
}

/// Creates booking `i` and moves it per [`plan`]; returns its id and committed events in order.
async fn drive(app: &TestApp, w: &World, pa: &Partner, i: usize) -> (String, Vec<String>) {
    let b = app
        .create_booking(
            &pa.key,
            &pa.booking(i % pa.members.len(), &format!("wh-crash-{i}")),
        )
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let prov = w.provider(&str_of(&b["provider_id"])).key.clone();
    let mut events = vec!["booking.created".to_string()];
    for mv in plan(i) {
        if *mv == "cancel" {
            app.cancel_booking(&pa.key, &id, "crash test").await.ok(200);
        } else {
            app.provider_event(&prov, &id, mv).await.ok(200);
        }
        events.push(event_of(mv).to_string());
    }
    (id, events)
}

#[tokio::test]
async fn events_committed_while_the_receiver_was_down_survive_sigkill() {
    let mut app = TestApp::spawn_with(&config()).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/crash");
    let secret = create_endpoint(&app, &pa.key, "crash", &url, &["*"]).await;

    // Events pile up: the receiver is down (nothing listens on the port).
    let app_ref = &app;
    let w_ref = &w;
    let committed: HashMap<String, Vec<String>> = stream::iter(0..BOOKINGS)
        .map(|i| async move { drive(app_ref, w_ref, pa, i).await })
        .buffer_unordered(8)
        .collect()
        .await;
    let expected: BTreeSet<(String, String)> = committed
        .iter()
        .flat_map(|(b, evs)| evs.iter().map(move |e| (b.clone(), e.clone())))
        .collect();
    // The dispatcher has been failing against the closed port.
    eventually(
        "failed attempts recorded",
        Duration::from_secs(5),
        || async {
            let items = deliveries(&app, &pa.key, "status=pending").await;
            items
                .iter()
                .any(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
                .then_some(())
        },
    )
    .await;
    app.kill9().await;
    app.restart().await;

    // Receiver up on the endpoint's port; every committed event must arrive.
    let rx = Receiver::start_with(port, &json!({ "secrets": { "/crash": [secret] } })).await;
    let hits = rx
        .wait_on("every committed event delivered", "/crash", |h| {
            let got: BTreeSet<(String, String)> = h
                .iter()
                .filter(|h| h.status == 200)
                .map(|h| (h.booking().to_string(), h.ty().to_string()))
                .collect();
            expected.is_subset(&got)
        })
        .await;
    assert_all_verified(&hits);

    let got: BTreeSet<(String, String)> = hits
        .iter()
        .map(|h| (h.booking().to_string(), h.ty().to_string()))
        .collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "events nobody committed arrived: {extra:?}"
    );

    // Per booking, the first arrival of each event follows commit order.
    for (b, evs) in &committed {
        let mut firsts: Vec<&str> = Vec::new();
        for h in hits.iter().filter(|h| h.booking() == b) {
            if !firsts.contains(&h.ty()) {
                firsts.push(h.ty());
            }
        }
        assert_eq!(
            firsts,
            evs.iter().map(String::as_str).collect::<Vec<_>>(),
            "booking {b}: events arrived out of commit order"
        );
    }
    // A re-sent request is the same message: same webhook-id, same body.
    let mut by_msg: HashMap<&str, &str> = HashMap::new();
    for h in &hits {
        let body = by_msg
            .entry(h.webhook_id.as_str())
            .or_insert(h.body.as_str());
        assert_eq!(
            *body, h.body,
            "webhook-id {} re-sent with another body",
            h.webhook_id
        );
    }

    // The server agrees: one delivery per committed event, all delivered, none dead.
    let list: Vec<Value> = eventually(
        "every delivery marked delivered",
        Duration::from_secs(5),
        || async {
            let items = deliveries(&app, &pa.key, "").await;
            items
                .iter()
                .all(|d| d["status"] == "delivered")
                .then_some(items)
        },
    )
    .await;
    let listed: BTreeSet<(String, String)> = list
        .iter()
        .map(|d| (str_of(&d["booking_id"]), str_of(&d["event"])))
        .collect();
    assert_eq!(
        list.len(),
        expected.len(),
        "one delivery per committed event"
    );
    assert_eq!(
        listed, expected,
        "the outbox differs from what was committed"
    );
}
