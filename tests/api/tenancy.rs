//! Each principal sees only its own world; foreign ids are 404, never 403.

use serde_json::json;

use crate::harness::{member_body, str_of, TestApp, World, BLR_FULL};

#[tokio::test]
async fn partner_b_cannot_touch_partner_a_bookings() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let pb = World::add_partner(&app, "pb").await;
    let a = app
        .create_booking(&pa.key, &pa.booking(0, "tenant-a"))
        .await
        .ok(201);
    let id = str_of(&a["id"]);

    app.get_booking(&pb.key, &id)
        .await
        .problem(404, "not_found");
    app.timeline(&pb.key, &id).await.problem(404, "not_found");
    app.cancel_booking(&pb.key, &id, "not mine")
        .await
        .problem(404, "not_found");
    app.reschedule(&pb.key, &id, "2030-01-03T09:00:00Z", "2030-01-03T10:00:00Z")
        .await
        .problem(404, "not_found");
    app.get(&format!("/v1/bookings/{id}/routing"), Some(&pb.key))
        .await
        .problem(404, "not_found");
    assert!(app.list_all_bookings(&pb.key, "").await.is_empty());
    assert!(app
        .list_all_bookings(&pb.key, "partner_ref=tenant-a")
        .await
        .is_empty());

    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(
        got["state"], "pending_provider",
        "B's attempts changed A's booking: {got}"
    );
    assert_eq!(
        got["version"], a["version"],
        "B's attempts changed A's booking: {got}"
    );
    assert_eq!(got["partner_id"], pa.id.as_str());
}

#[tokio::test]
async fn a_provider_sees_only_bookings_routed_to_it() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let a = app
        .create_booking(&pa.key, &pa.booking(0, "tenant-prov"))
        .await
        .ok(201);
    let id = str_of(&a["id"]);
    let p1 = str_of(&a["provider_id"]);
    let other = BLR_FULL.iter().find(|p| **p != p1).expect("another lab");
    let p2 = w.provider(other);

    for event in ["accept", "reject", "completed"] {
        app.provider_event(&p2.key, &id, event)
            .await
            .problem(404, "not_found");
    }
    let mumbai = w.provider("mum-lab-1");
    app.provider_event(&mumbai.key, &id, "accept")
        .await
        .problem(404, "not_found");
    for key in [&p2.key, &mumbai.key] {
        let list = app.provider_bookings(key, None).await.ok(200);
        assert!(
            list["items"].as_array().expect("items").is_empty(),
            "a provider lists a booking not routed to it: {list}"
        );
    }
    let mine = app
        .provider_bookings(&w.provider(&p1).key, None)
        .await
        .ok(200);
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");

    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "pending_provider");
    assert_eq!(got["version"], a["version"]);
    assert_eq!(got["provider_id"], p1.as_str());
}

#[tokio::test]
async fn partner_b_cannot_see_partner_a_members_or_policies() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let pb = World::add_partner(&app, "pb").await;
    let a_member = &pa.members[0];

    let own = app.get_member(&pa.key, a_member).await.ok(200);
    assert_eq!(own["policy_id"], pa.policy_id.as_str(), "{own}");
    app.get_member(&pb.key, a_member)
        .await
        .problem(404, "not_found");
    let own = app.entitlements(&pa.key, a_member).await.ok(200);
    assert_eq!(own["member_id"], a_member.as_str(), "{own}");
    app.entitlements(&pb.key, a_member)
        .await
        .problem(404, "not_found");
    app.get_policy(&pa.key, &pa.policy_id).await.ok(200);
    app.get_policy(&pb.key, &pa.policy_id)
        .await
        .problem(404, "not_found");

    // B cannot book for A's member, nor enrol someone into A's policy.
    let p = app
        .create_booking(&pb.key, &pb.booking_for(a_member, &["CBC"], "steal"))
        .await
        .problem(422, "ineligible");
    assert!(
        p["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["code"] == "member_not_found"),
        "reasons: {p}"
    );
    app.put_member(
        &pb.key,
        "pb-sneaky",
        &member_body(&pa.policy_id, "560001", 5),
    )
    .await
    .problem(422, "unknown_policy");
    // Eligibility for A's member, asked by B: no such member in B's world.
    let e = app
        .post(
            "/v1/eligibility",
            &pb.key,
            &json!({"member_id": a_member, "services": ["CBC"]}),
        )
        .await
        .ok(200);
    assert_eq!(
        e["eligible"], false,
        "B's eligibility check saw A's member: {e}"
    );
    assert!(
        e["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["code"] == "member_not_found"),
        "B's eligibility check for A's member: {e}"
    );
}

#[tokio::test]
async fn provider_reads_only_its_own_booking() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let a = app
        .create_booking(&pa.key, &pa.booking(0, "tenant-read"))
        .await
        .ok(201);
    let id = str_of(&a["id"]);
    let p1 = str_of(&a["provider_id"]);
    let path = format!("/v1/provider/bookings/{id}");
    let mine = app.get(&path, Some(&w.provider(&p1).key)).await.ok(200);
    assert_eq!(mine["id"], id.as_str(), "{mine}");
    let other = BLR_FULL.iter().find(|p| **p != p1).expect("another lab");
    app.get(&path, Some(&w.provider(other).key))
        .await
        .problem(404, "not_found");
    app.get(&path, Some(&w.provider("mum-lab-1").key))
        .await
        .problem(404, "not_found");
}
