//! Routing: who is excluded (open hours, inactive, services, pincodes) and re-routing when a
//! provider lets the acceptance window run out.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{eventually, str_of, TestApp, World, BLR_FULL};

/// The provider ids listed under `routing.candidates` / `routing.excluded` of a booking view.
fn routing_ids(b: &Value, list: &str) -> Vec<String> {
    b["routing"][list]
        .as_array()
        .unwrap_or_else(|| panic!("booking routing.{list} is not a list: {}", b["routing"]))
        .iter()
        .map(|c| str_of(&c["provider_id"]))
        .collect()
}

#[tokio::test]
async fn open_hours_exclude_a_closed_provider() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    // blr-lab-1 opens on Mondays only, 07:00-19:00 India time.
    World::reconfigure_provider(&app, "blr-lab-1", |b| {
        b["open_hours"] = json!({"mon": ["07:00-19:00"]});
    })
    .await;

    let cases = [
        // 2030-01-01 is a Tuesday: a day not listed is closed.
        (
            "tuesday",
            "2030-01-01T03:30:00Z",
            "2030-01-01T04:30:00Z",
            false,
        ),
        // Monday 18:30-19:30 IST runs past closing time.
        (
            "past closing",
            "2030-01-07T13:00:00Z",
            "2030-01-07T14:00:00Z",
            false,
        ),
        // Monday 09:00-10:00 IST is inside the range.
        (
            "monday morning",
            "2030-01-07T03:30:00Z",
            "2030-01-07T04:30:00Z",
            true,
        ),
    ];
    for (what, start, end, open) in cases {
        let mut body = pa.booking(0, &format!("hours-{what}"));
        body["slot"] = json!({"start": start, "end": end});
        let b = app.create_booking(&pa.key, &body).await.ok(201);
        let candidates = routing_ids(&b, "candidates");
        let excluded = routing_ids(&b, "excluded");
        let lab1 = "blr-lab-1".to_string();
        if open {
            assert!(
                candidates.contains(&lab1),
                "{what}: blr-lab-1 should be a candidate: {}",
                b["routing"]
            );
        } else {
            assert_eq!(b["provider_id"], "blr-lab-2", "{what}: {}", b["routing"]);
            assert!(
                !candidates.contains(&lab1),
                "{what}: closed blr-lab-1 is a candidate: {}",
                b["routing"]
            );
            assert!(
                excluded.contains(&lab1),
                "{what}: closed blr-lab-1 is not listed as excluded: {}",
                b["routing"]
            );
        }
        for id in ["blr-inactive", "blr-cbc-only", "mum-lab-1"] {
            assert!(
                !candidates.contains(&id.to_string()),
                "{what}: {id} is a candidate: {}",
                b["routing"]
            );
        }
    }
}

#[tokio::test]
async fn acceptance_breach_reroutes_and_opens_an_exception() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    for id in BLR_FULL {
        World::reconfigure_provider(&app, id, |b| b["sla"]["accept_within"] = json!("2s")).await;
    }
    let agent = app.operator_key("op-watch", "agent").await;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "breach"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let p1 = str_of(&c["provider_id"]);

    let b = eventually(
        "re-routing after the acceptance breach",
        Duration::from_secs(30),
        || async {
            let b = app.get_booking(&pa.key, &id).await.ok(200);
            (b["provider_id"] != p1.as_str()).then_some(b)
        },
    )
    .await;
    assert_eq!(b["state"], "pending_provider", "after the breach: {b}");
    let p2 = str_of(&b["provider_id"]);
    assert!(BLR_FULL.contains(&p2.as_str()), "re-routed to {p2}");
    assert!(
        b["routing"]["attempt"].as_i64() > c["routing"]["attempt"].as_i64(),
        "{}",
        b["routing"]
    );

    let cases = app
        .get(&format!("/v1/ops/exceptions?booking_id={id}"), Some(&agent))
        .await
        .ok(200);
    assert!(
        cases["items"].as_array().is_some_and(|a| !a.is_empty()),
        "no exception case for the breached acceptance SLA: {cases}"
    );
}
