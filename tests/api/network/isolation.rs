//! Provider isolation and data minimisation: a provider lists and reads only the bookings
//! routed to it (another's is a 404 for reads and events alike); before `accept` it sees no
//! member name, phone or coordinates, after `accept` it does.

use serde_json::{json, Value};

use super::{blr_booking, booking, lab, provider_list_ids, Net, BLR, CBC, LIPID, MUM, SLOT};
use crate::harness::{str_of, TestApp};

/// Asserts the provider view of a booking not yet accepted reveals nobody.
#[track_caller]
fn assert_minimised(view: &Value, name: &str, phone: &str, what: &str) {
    let text = view.to_string();
    assert!(
        view.get("member").is_none(),
        "{what}: member shown before accept: {view}"
    );
    assert!(
        view.get("member_id").is_none(),
        "{what}: member_id shown before accept: {view}"
    );
    assert!(
        !text.contains(name),
        "{what}: member name in the view: {view}"
    );
    assert!(
        !text.contains(phone),
        "{what}: member phone in the view: {view}"
    );
    let addr = &view["address"];
    assert!(addr["pincode"].is_string(), "{what}: no pincode: {view}");
    assert!(
        addr.get("lat").is_none_or(Value::is_null) && addr.get("lon").is_none_or(Value::is_null),
        "{what}: coordinates shown before accept: {view}"
    );
}

#[tokio::test]
async fn providers_see_only_their_own_bookings_and_members_only_after_accept() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    net.add(&app, "is-blr", &lab(BLR.0, BLR.1, BLR.2)).await;
    let mut mum = lab(MUM.0, MUM.1, MUM.2);
    mum["services"] = json!({"CBC": {"rate_paise": 45_000}, "LIPID": {"rate_paise": 70_000}});
    net.add(&app, "is-mum", &mum).await;
    // The harness member bodies: member n is "Test Member n", phone +91980000nnnn.
    let (name0, phone0) = ("Test Member 0", "+919800000000");

    let blr1 = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "is-1"))
        .await
        .ok(201);
    let blr2 = app
        .create_booking(net.pk(), &blr_booking(net.member(1), "is-2"))
        .await
        .ok(201);
    let mumbai = net.partner.mumbai_member.clone();
    let mb = app
        .create_booking(net.pk(), &booking(&mumbai, &["CBC"], SLOT, MUM, "is-m"))
        .await
        .ok(201);
    let (b1, b2, m1) = (str_of(&blr1["id"]), str_of(&blr2["id"]), str_of(&mb["id"]));
    assert_eq!(blr1["provider_id"], "is-blr");
    assert_eq!(blr2["provider_id"], "is-blr");
    assert_eq!(mb["provider_id"], "is-mum");

    // Lists: only one's own.
    let blr_key = net.key("is-blr").to_string();
    let mum_key = net.key("is-mum").to_string();
    assert_eq!(
        provider_list_ids(&app, &blr_key).await,
        [b1.clone(), b2.clone()].into_iter().collect(),
    );
    assert_eq!(
        provider_list_ids(&app, &mum_key).await,
        [m1.clone()].into_iter().collect()
    );

    // Another provider's booking is a 404 for reads and for every event; nothing changes.
    for (key, id) in [(&mum_key, &b1), (&blr_key, &m1)] {
        app.get(&format!("/v1/provider/bookings/{id}"), Some(key))
            .await
            .problem(404, "not_found");
        for ev in ["accept", "reject", "sample_collected", "no_show"] {
            app.provider_event(key, id, ev)
                .await
                .problem(404, "not_found");
        }
    }
    // An unknown booking looks the same as another provider's.
    let unknown = "01900000-0000-7000-8000-000000000000";
    app.get(&format!("/v1/provider/bookings/{unknown}"), Some(&blr_key))
        .await
        .problem(404, "not_found");
    for (id, created) in [(&b1, &blr1), (&m1, &mb)] {
        let b = app.get_booking(net.pk(), id).await.ok(200);
        assert_eq!(
            b["state"], "pending_provider",
            "a foreign event changed {id}: {b}"
        );
        assert_eq!(
            b["version"], created["version"],
            "a foreign event changed {id}: {b}"
        );
    }

    // Before accept: services, slot, pincode, its own gross price and SLA; nobody's identity.
    let pre = app
        .get(&format!("/v1/provider/bookings/{b1}"), Some(&blr_key))
        .await
        .ok(200);
    assert_minimised(&pre, name0, phone0, "GET before accept");
    assert_eq!(pre["services"], json!(["CBC", "LIPID"]), "{pre}");
    assert_eq!(pre["address"]["pincode"], "560001", "{pre}");
    assert_eq!(pre["slot"]["start"], SLOT.0, "{pre}");
    assert_eq!(pre["amounts"]["gross_paise"], CBC + LIPID, "{pre}");
    assert!(
        pre["sla"]
            .as_array()
            .is_some_and(|s| s.iter().any(|e| e["kind"] == "acceptance")),
        "no acceptance SLA in the provider view: {pre}"
    );
    let listed = app.provider_bookings(&blr_key, None).await.ok(200);
    for item in listed["items"].as_array().expect("items") {
        assert_minimised(item, name0, phone0, "list before accept");
        assert_minimised(item, "Test Member 1", "+919800000001", "list before accept");
    }
    let mpre = app
        .get(&format!("/v1/provider/bookings/{m1}"), Some(&mum_key))
        .await
        .ok(200);
    assert_eq!(
        mpre["amounts"]["gross_paise"], 45_000,
        "its own price: {mpre}"
    );
    assert_minimised(
        &mpre,
        "Test Member 99",
        "+919800000099",
        "Mumbai before accept",
    );

    // Accept: the reply and every later read show the member and the full address.
    let acc = app.provider_event(&blr_key, &b1, "accept").await.ok(200);
    let post = app
        .get(&format!("/v1/provider/bookings/{b1}"), Some(&blr_key))
        .await
        .ok(200);
    for v in [&acc, &post] {
        assert_eq!(v["state"], "confirmed", "{v}");
        assert_eq!(v["member"]["member_id"], net.member(0), "{v}");
        assert_eq!(v["member"]["name"], name0, "{v}");
        assert_eq!(v["member"]["phone"], phone0, "{v}");
        assert_eq!(v["address"]["lat"], BLR.0, "{v}");
        assert_eq!(v["address"]["lon"], BLR.1, "{v}");
    }
    // The other, unaccepted booking stays minimised.
    let other = app
        .get(&format!("/v1/provider/bookings/{b2}"), Some(&blr_key))
        .await
        .ok(200);
    assert_minimised(
        &other,
        "Test Member 1",
        "+919800000001",
        "the unaccepted one",
    );
    // The Mumbai lab still cannot read the accepted booking.
    app.get(&format!("/v1/provider/bookings/{b1}"), Some(&mum_key))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_booking_cancelled_before_accept_stays_minimised_for_its_provider() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    net.add(&app, "is-blr", &lab(BLR.0, BLR.1, BLR.2)).await;
    let key = net.key("is-blr").to_string();
    let b = app
        .create_booking(net.pk(), &blr_booking(net.member(1), "is-cancel"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let pre = app
        .get(&format!("/v1/provider/bookings/{id}"), Some(&key))
        .await
        .ok(200);
    assert_minimised(&pre, "Test Member 1", "+919800000001", "pending");

    // The partner cancels before the lab accepted: the lab never accepted, so it must not
    // learn who the member is now (a 404 would be acceptable too).
    app.cancel_booking(net.pk(), &id, "member changed plans")
        .await
        .ok(200);
    let cancelled = app
        .get(&format!("/v1/provider/bookings/{id}"), Some(&key))
        .await;
    let views: Vec<Value> = if cancelled.status == 200 {
        let list = app.provider_bookings(&key, None).await.ok(200);
        let listed = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|v| v["id"] == id.as_str())
            .cloned();
        std::iter::once(cancelled.json()).chain(listed).collect()
    } else {
        cancelled.problem(404, "not_found");
        Vec::new()
    };
    for v in &views {
        assert_eq!(v["state"], "cancelled", "{v}");
        assert_minimised(
            v,
            "Test Member 1",
            "+919800000001",
            "cancelled before accept",
        );
    }
}
