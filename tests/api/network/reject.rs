//! Reject → next provider → reject → `failed`: capacity and the entitlement reservation move
//! with the booking and are released at the end; a `no_provider` exception case is opened.

use serde_json::json;

use super::{
    blr_booking, candidate_ids, excluded_map, lab, lab_benefit, provider_list_ids, reserved,
    routing_items, Net, BLR, CBC, LIPID, SLOT_DAY,
};
use crate::harness::{str_of, TestApp};

#[tokio::test]
async fn reject_reroutes_then_fails_releasing_the_reservation_and_opening_no_provider() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let (lat, lon, pin) = BLR;
    net.add(&app, "rj-a", &lab(lat, lon, pin)).await;
    let mut b_body = lab(12.9900, 77.6100, pin);
    b_body["services"] = json!({"CBC": {"rate_paise": 50_000}, "LIPID": {"rate_paise": 70_000}});
    net.add(&app, "rj-b", &b_body).await;
    let agent = app.operator_key("op-rj", "agent").await;
    let member = net.member(0).to_string();

    let before = lab_benefit(&app, net.pk(), &member, SLOT_DAY).await;
    assert_eq!(reserved(&before), (0, 0), "{before}");

    let b = app
        .create_booking(net.pk(), &blr_booking(&member, "rj-1"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    assert_eq!(b["provider_id"], "rj-a", "{}", b["routing"]);
    assert_eq!(b["amounts"]["gross_paise"], CBC + LIPID, "{b}");
    let ent = lab_benefit(&app, net.pk(), &member, SLOT_DAY).await;
    assert_eq!(reserved(&ent), (1, CBC + LIPID), "after booking: {ent}");
    assert!(provider_list_ids(&app, net.key("rj-a")).await.contains(&id));

    // rj-a rejects: rj-b gets it at its own price.
    let r = app
        .provider_event_with(
            net.key("rj-a"),
            &id,
            &json!({"type": "reject", "reason": "closed for audit"}),
        )
        .await;
    assert_eq!(r.status, 200, "rj-a reject: {}", r.text());
    let b = app.get_booking(net.pk(), &id).await.ok(200);
    assert_eq!(b["state"], "pending_provider", "{b}");
    assert_eq!(b["provider_id"], "rj-b", "{}", b["routing"]);
    assert_eq!(b["routing"]["attempt"], 2, "{}", b["routing"]);
    assert_eq!(candidate_ids(&b["routing"]), ["rj-b"], "{}", b["routing"]);
    assert_eq!(
        excluded_map(&b["routing"]).get("rj-a").map(String::as_str),
        Some("already_tried"),
        "{}",
        b["routing"]
    );
    assert_eq!(
        b["amounts"]["gross_paise"], 120_000,
        "re-priced at rj-b's rates: {b}"
    );
    let ent = lab_benefit(&app, net.pk(), &member, SLOT_DAY).await;
    assert_eq!(
        reserved(&ent),
        (1, 120_000),
        "one reservation, at rj-b's price, after the re-route: {ent}"
    );
    assert!(provider_list_ids(&app, net.key("rj-b")).await.contains(&id));
    // The booking is no longer routed to rj-a: it can neither see nor act on it.
    app.get(
        &format!("/v1/provider/bookings/{id}"),
        Some(net.key("rj-a")),
    )
    .await
    .problem(404, "not_found");
    app.provider_event(net.key("rj-a"), &id, "accept")
        .await
        .problem(404, "not_found");
    let b = app.get_booking(net.pk(), &id).await.ok(200);
    assert_eq!(
        b["state"], "pending_provider",
        "rj-a's accept changed the booking: {b}"
    );

    // rj-b rejects too: nobody is left.
    let r = app
        .provider_event_with(
            net.key("rj-b"),
            &id,
            &json!({"type": "reject", "reason": "no kits"}),
        )
        .await;
    assert_eq!(r.status, 200, "rj-b reject: {}", r.text());
    let b = app.get_booking(net.pk(), &id).await.ok(200);
    assert_eq!(b["state"], "failed", "{b}");
    assert!(
        b["provider_id"].is_null(),
        "a failed booking has no provider: {b}"
    );
    assert_eq!(b["routing"]["attempt"], 3, "{}", b["routing"]);
    assert!(b["routing"]["provider_id"].is_null(), "{}", b["routing"]);
    assert!(candidate_ids(&b["routing"]).is_empty(), "{}", b["routing"]);
    let excl = excluded_map(&b["routing"]);
    assert_eq!(excl.get("rj-a").map(String::as_str), Some("already_tried"));
    assert_eq!(excl.get("rj-b").map(String::as_str), Some("already_tried"));

    let items = routing_items(&app, net.pk(), &id).await;
    let providers: Vec<_> = items.iter().map(|i| i["provider_id"].clone()).collect();
    assert_eq!(
        providers,
        [json!("rj-a"), json!("rj-b"), json!(null)],
        "{items:?}"
    );

    // The entitlement is whole again and the moves tell the story.
    let ent = lab_benefit(&app, net.pk(), &member, SLOT_DAY).await;
    assert_eq!(
        reserved(&ent),
        (0, 0),
        "failed booking still holds a reservation: {ent}"
    );
    assert_eq!(ent["count_used"], 0, "{ent}");
    let v = app
        .get(
            &format!("/v1/members/{member}/entitlements?on={SLOT_DAY}"),
            Some(net.pk()),
        )
        .await
        .ok(200);
    let moves: Vec<(String, i64)> = v["moves"]
        .as_array()
        .expect("moves")
        .iter()
        .filter(|m| m["booking_id"] == id.as_str())
        .map(|m| {
            (
                str_of(&m["kind"]),
                m["amount_paise"].as_i64().expect("amount"),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("reserve", 100_000),
        ("release", 100_000),
        ("reserve", 120_000),
        ("release", 120_000),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), *a))
    .collect();
    assert_eq!(moves, want, "{v}");

    // Capacity came back too: both labs take a new booking that day at full load.
    for p in ["rj-a", "rj-b"] {
        let n = if p == "rj-a" { 1 } else { 2 };
        let nb = app
            .create_booking(
                net.pk(),
                &blr_booking(net.member(n), &format!("rj-next-{p}")),
            )
            .await
            .ok(201);
        let load = super::candidate(&nb["routing"], p)["components"]["load"].clone();
        assert_eq!(
            load,
            json!(1.0),
            "{p} still counts the failed booking: {}",
            nb["routing"]
        );
    }

    // The no_provider case, for operators.
    let cases = app
        .get(&format!("/v1/ops/exceptions?booking_id={id}"), Some(&agent))
        .await
        .ok(200);
    let list = cases["items"].as_array().expect("items");
    let np: Vec<_> = list.iter().filter(|c| c["type"] == "no_provider").collect();
    assert_eq!(np.len(), 1, "one no_provider case: {cases}");
    assert_eq!(np[0]["booking_id"], id.as_str(), "{cases}");
    assert_eq!(np[0]["state"], "open", "{cases}");
    let b = app.get_booking(net.pk(), &id).await.ok(200);
    assert!(
        b["exceptions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "no_provider")),
        "the booking does not show its no_provider case: {b}"
    );
    // Partners and providers do not read /v1/ops.
    app.get(
        &format!("/v1/ops/exceptions?booking_id={id}"),
        Some(net.pk()),
    )
    .await
    .problem(403, "forbidden");
}
