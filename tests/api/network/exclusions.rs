//! Exclusions: every reason (`inactive`, `service_not_offered`, `outside_area`,
//! `tier_not_in_network`, `capacity_full`, `closed_at_slot`, `already_tried`) in the booking's
//! `routing.excluded` and in `GET /v1/bookings/{id}/routing`; providers the indexes do not
//! return (neither listing the pincode nor with a radius whose bounding box covers the
//! address's grid cell) are listed nowhere.

use std::collections::BTreeMap;

use serde_json::json;

use super::{
    blr_booking, booking, candidate_ids, excluded_map, lab, mentioned, routing_items, Net, BLR, MUM,
};
use crate::harness::{str_of, TestApp};

/// Builds the exclusion network around [`BLR`]:
/// - `ex-full` (at the address, capacity 1), `ex-ok` (0.7 km), `ex-backup` (2.6 km): eligible;
/// - `ex-inactive`, `ex-cbc-only` (no LIPID), `ex-silver` (tier silver), `ex-closed` (open
///   Mondays 07:00-09:00 India time), all at the address and listing 560001;
/// - `ex-outside`: 4 km south, radius 3 km, lists only 560099: the bounding box of its radius
///   covers the address's 0.05° grid cell, so the geo index returns it, but it cannot reach;
/// - `ex-north` (35 km north, radius 5 km, 560064) and `ex-mumbai`: not returned by the indexes.
async fn exclusion_network(app: &TestApp) -> Net {
    let mut net = Net::build(app).await;
    let (lat, lon, pin) = BLR;
    let mut full = lab(lat, lon, pin);
    full["daily_capacity"] = json!(1);
    net.add(app, "ex-full", &full).await;
    net.add(app, "ex-ok", &lab(12.9750, 77.6000, pin)).await;
    net.add(app, "ex-backup", &lab(12.9900, 77.6100, pin)).await;
    let mut inactive = lab(lat, lon, pin);
    inactive["active"] = json!(false);
    net.add(app, "ex-inactive", &inactive).await;
    let mut cbc_only = lab(lat, lon, pin);
    cbc_only["services"] = json!({"CBC": {"rate_paise": 100}});
    net.add(app, "ex-cbc-only", &cbc_only).await;
    let mut silver = lab(lat, lon, pin);
    silver["network_tier"] = json!("silver");
    net.add(app, "ex-silver", &silver).await;
    let mut closed = lab(lat, lon, pin);
    closed["open_hours"] = json!({"mon": ["07:00-09:00"]});
    net.add(app, "ex-closed", &closed).await;
    let mut outside = lab(lat - 0.036, lon, "560099");
    outside["radius_km"] = json!(3);
    net.add(app, "ex-outside", &outside).await;
    let mut north = lab(13.30, 77.60, "560064");
    north["radius_km"] = json!(5);
    net.add(app, "ex-north", &north).await;
    let mut mumbai = lab(MUM.0, MUM.1, MUM.2);
    mumbai["radius_km"] = json!(15);
    net.add(app, "ex-mumbai", &mumbai).await;
    net
}

fn reasons(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect()
}

const STATIC_EXCLUSIONS: [(&str, &str); 5] = [
    ("ex-inactive", "inactive"),
    ("ex-cbc-only", "service_not_offered"),
    ("ex-silver", "tier_not_in_network"),
    ("ex-closed", "closed_at_slot"),
    ("ex-outside", "outside_area"),
];

#[tokio::test]
async fn every_exclusion_reason_is_shown_on_the_booking_and_in_its_routing_history() {
    let app = TestApp::spawn().await;
    let net = exclusion_network(&app).await;

    // 1st booking: ex-full (at the door) takes it and is then full for the day.
    let first = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "ex-1"))
        .await
        .ok(201);
    let r = &first["routing"];
    assert_eq!(first["provider_id"], "ex-full", "{r}");
    assert_eq!(candidate_ids(r), ["ex-full", "ex-ok", "ex-backup"], "{r}");
    assert_eq!(excluded_map(r), reasons(&STATIC_EXCLUSIONS), "{r}");
    for id in ["ex-north", "ex-mumbai"] {
        assert!(
            !mentioned(r).contains(id),
            "{id} neither lists 560001 nor reaches the address's grid cell, yet routing lists it: {r}"
        );
    }

    // 2nd booking, same India day: ex-full is at capacity, ex-ok takes it.
    let second = app
        .create_booking(net.pk(), &blr_booking(net.member(1), "ex-2"))
        .await
        .ok(201);
    let id = str_of(&second["id"]);
    let r = &second["routing"];
    assert_eq!(second["provider_id"], "ex-ok", "{r}");
    assert_eq!(candidate_ids(r), ["ex-ok", "ex-backup"], "{r}");
    let mut want = reasons(&STATIC_EXCLUSIONS);
    want.insert("ex-full".into(), "capacity_full".into());
    assert_eq!(excluded_map(r), want, "{r}");
    let got = app.get_booking(net.pk(), &id).await.ok(200);
    assert_eq!(excluded_map(&got["routing"]), want, "GET /v1/bookings/{id}");

    // ex-ok rejects: the next decision lists it as already tried.
    let rej = app
        .provider_event_with(
            net.key("ex-ok"),
            &id,
            &json!({"type": "reject", "reason": "no phlebotomist free"}),
        )
        .await;
    assert_eq!(rej.status, 200, "reject: {}", rej.text());
    let after = app.get_booking(net.pk(), &id).await.ok(200);
    let r = &after["routing"];
    assert_eq!(after["state"], "pending_provider", "{after}");
    assert_eq!(after["provider_id"], "ex-backup", "{r}");
    assert_eq!(r["attempt"], 2, "{r}");
    assert_eq!(r["trigger"], "rejected", "{r}");
    assert_eq!(candidate_ids(r), ["ex-backup"], "{r}");
    let mut want2 = want.clone();
    want2.insert("ex-ok".into(), "already_tried".into());
    assert_eq!(
        excluded_map(r),
        want2,
        "all seven reasons after the reject: {r}"
    );

    // The history keeps both decisions, oldest first; the booking shows the latest.
    let items = routing_items(&app, net.pk(), &id).await;
    assert_eq!(items.len(), 2, "two routing attempts: {items:?}");
    assert_eq!(items[0]["attempt"], 1);
    assert_eq!(items[0]["provider_id"], "ex-ok");
    assert_eq!(excluded_map(&items[0]), want, "attempt 1: {}", items[0]);
    assert_eq!(candidate_ids(&items[0]), ["ex-ok", "ex-backup"]);
    assert_eq!(items[1]["attempt"], 2);
    assert_eq!(items[1]["provider_id"], "ex-backup");
    assert_eq!(excluded_map(&items[1]), want2, "attempt 2: {}", items[1]);
    assert_eq!(candidate_ids(&items[1]), ["ex-backup"]);
    for item in &items {
        for id in ["ex-north", "ex-mumbai"] {
            assert!(!mentioned(item).contains(id), "{id} listed: {item}");
        }
    }

    // Partner isolation of the routing history.
    let other = crate::harness::World::add_partner(&app, "pb").await;
    app.get(&format!("/v1/bookings/{id}/routing"), Some(&other.key))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn open_hours_are_india_time_and_the_whole_slot_must_fit() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let (lat, lon, pin) = BLR;
    net.add(&app, "oh-always", &lab(12.9750, 77.6000, pin))
        .await;
    let mut closed = lab(lat, lon, pin);
    closed["open_hours"] = json!({"mon": ["07:00-09:00"]});
    net.add(&app, "oh-morning", &closed).await;
    let mut night = lab(lat, lon, pin);
    night["open_hours"] = json!({"tue": ["00:00-02:00"]});
    net.add(&app, "oh-night", &night).await;

    // 2030-01-07 is a Monday. (what, start, end, oh-morning open?, oh-night open?)
    let cases = [
        (
            "mon 07:00-08:00 IST",
            "2030-01-07T01:30:00Z",
            "2030-01-07T02:30:00Z",
            true,
            false,
        ),
        (
            "mon 07:00-09:00 IST (exactly the range)",
            "2030-01-07T01:30:00Z",
            "2030-01-07T03:30:00Z",
            true,
            false,
        ),
        (
            "mon 08:30-09:30 IST (runs past closing)",
            "2030-01-07T03:00:00Z",
            "2030-01-07T04:00:00Z",
            false,
            false,
        ),
        (
            "mon 06:30-07:30 IST (starts before opening)",
            "2030-01-07T01:00:00Z",
            "2030-01-07T02:00:00Z",
            false,
            false,
        ),
        (
            "mon 12:30-13:30 IST (07:00-08:00 UTC)",
            "2030-01-07T07:00:00Z",
            "2030-01-07T08:00:00Z",
            false,
            false,
        ),
        (
            "tue 07:00-08:00 IST (day not listed)",
            "2030-01-08T01:30:00Z",
            "2030-01-08T02:30:00Z",
            false,
            false,
        ),
        (
            "tue 00:15-01:15 IST (monday in UTC)",
            "2030-01-07T18:45:00Z",
            "2030-01-07T19:45:00Z",
            false,
            true,
        ),
        (
            "mon 23:30-tue 00:30 IST (crosses midnight)",
            "2030-01-07T18:00:00Z",
            "2030-01-07T19:00:00Z",
            false,
            false,
        ),
    ];
    for (n, (what, start, end, morning, night)) in cases.into_iter().enumerate() {
        let body = booking(
            net.member(n % 4),
            &["CBC"],
            (start, end),
            BLR,
            &format!("oh-{n}"),
        );
        let b = app.create_booking(net.pk(), &body).await.ok(201);
        let id = str_of(&b["id"]);
        let items = routing_items(&app, net.pk(), &id).await;
        for r in [&b["routing"], &items[0]] {
            let cands = candidate_ids(r);
            let excl = excluded_map(r);
            assert!(cands.contains(&"oh-always".to_string()), "{what}: {r}");
            for (id, open) in [("oh-morning", morning), ("oh-night", night)] {
                if open {
                    assert!(
                        cands.contains(&id.to_string()) && !excl.contains_key(id),
                        "{what}: {id} is open for this slot but not a candidate: {r}"
                    );
                } else {
                    assert_eq!(
                        excl.get(id).map(String::as_str),
                        Some("closed_at_slot"),
                        "{what}: {id} should be excluded as closed_at_slot: {r}"
                    );
                    assert!(!cands.contains(&id.to_string()), "{what}: {r}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_provider_moved_to_another_city_leaves_the_old_indexes() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    net.add(&app, "mv-stay", &lab(12.9750, 77.6000, BLR.2))
        .await;
    net.add(&app, "mv-mum", &lab(18.9350, 72.8350, MUM.2)).await;
    net.add(&app, "mv-lab", &lab(BLR.0, BLR.1, BLR.2)).await;
    let mumbai = net.partner.mumbai_member.clone();
    let blr = |n: usize| blr_booking(net.member(n), &format!("mv-blr-{n}"));
    let mum = |n: usize| booking(&mumbai, &["CBC"], super::SLOT, MUM, &format!("mv-mum-{n}"));

    let b = app.create_booking(net.pk(), &blr(0)).await.ok(201);
    assert_eq!(b["provider_id"], "mv-lab", "{}", b["routing"]);

    // mv-lab moves to Mumbai (new location, pincodes and radius cells).
    let mut moved = lab(MUM.0, MUM.1, MUM.2);
    moved["radius_km"] = json!(5);
    app.put_provider("mv-lab", &moved).await.ok(200);
    let b = app.create_booking(net.pk(), &blr(1)).await.ok(201);
    assert_eq!(b["provider_id"], "mv-stay", "{}", b["routing"]);
    assert!(
        !mentioned(&b["routing"]).contains("mv-lab"),
        "mv-lab left Bengaluru but is still found there (stale index entry): {}",
        b["routing"]
    );
    let m = app.create_booking(net.pk(), &mum(0)).await.ok(201);
    assert_eq!(m["provider_id"], "mv-lab", "{}", m["routing"]);

    // And back.
    app.put_provider("mv-lab", &lab(BLR.0, BLR.1, BLR.2))
        .await
        .ok(200);
    let m = app.create_booking(net.pk(), &mum(1)).await.ok(201);
    assert_eq!(candidate_ids(&m["routing"]), ["mv-mum"], "{}", m["routing"]);
    assert!(
        !mentioned(&m["routing"]).contains("mv-lab"),
        "{}",
        m["routing"]
    );
    let b = app.create_booking(net.pk(), &blr(2)).await.ok(201);
    assert_eq!(b["provider_id"], "mv-lab", "{}", b["routing"]);
}
