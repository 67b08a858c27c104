//! Bad requests: malformed bodies, business-rule refusals, illegal transitions, auth.
//! Every error must be `application/problem+json` with a stable `code`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{member_body, policy_body, str_of, TestApp, World, ADMIN_TOKEN};

/// The `code`s of an `ineligible` problem's `reasons`.
fn reason_codes(problem: &Value) -> Vec<String> {
    problem["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("ineligible problem without reasons: {problem}"))
        .iter()
        .map(|r| str_of(&r["code"]))
        .collect()
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    let r = app
        .post_raw(
            "/v1/bookings",
            Some(&pa.key),
            "application/json",
            br#"{"member_id": "pa-m0", "services": ["CBC""#.to_vec(),
        )
        .await;
    r.problem(400, "invalid_json");
    assert!(
        r.header("x-request-id").is_some(),
        "no x-request-id on an error"
    );

    let good = pa.booking(0, "bad-1");
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v["member_id"] = json!(123);
    cases.push(("member_id is a number", v));
    let mut v = good.clone();
    v["services"] = json!("CBC");
    cases.push(("services is a string", v));
    let mut v = good.clone();
    v.as_object_mut().expect("object").remove("slot");
    cases.push(("slot missing", v));
    let mut v = good.clone();
    v.as_object_mut().expect("object").remove("member_id");
    cases.push(("member_id missing", v));
    let mut v = good.clone();
    v["slot"]["start"] = json!("tomorrow morning");
    cases.push(("slot.start not a time", v));
    cases.push(("body is an array", json!([1, 2, 3])));
    for (what, body) in cases {
        let r = app.create_booking(&pa.key, &body).await;
        let p = r.problem_any(400);
        assert!(
            p["code"] == "invalid_json" || p["code"] == "invalid_field",
            "{what}: code {} (want invalid_json or invalid_field)",
            p["code"]
        );
    }

    let mut invalid: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v["slot"] = json!({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"});
    invalid.push(("slot.end before slot.start", v));
    let mut v = good.clone();
    v["slot"] = json!({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T10:00:00Z"});
    invalid.push(("slot.end == slot.start", v));
    let mut v = good.clone();
    v["mode"] = json!("carrier_pigeon");
    invalid.push(("unknown mode", v));
    let mut v = good.clone();
    v["services"] = json!([]);
    invalid.push(("empty services", v));
    for (what, body) in invalid {
        let r = app.create_booking(&pa.key, &body).await;
        assert_eq!(r.status, 400, "{what}: {} {}", r.status, r.text());
        r.problem(400, "invalid_field");
    }
    app.list_bookings(&pa.key, "limit=201")
        .await
        .problem(400, "invalid_field");
    assert!(
        app.list_all_bookings(&pa.key, "").await.is_empty(),
        "a rejected request created a booking"
    );
}

#[tokio::test]
async fn unknown_service_and_ineligible_reasons_are_422() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    let body = pa.booking_for(&pa.members[0], &["CBC", "MRI"], "inel-svc");
    app.create_booking(&pa.key, &body)
        .await
        .problem(422, "unknown_service");

    let body = pa.booking_for("pa-nobody", &["CBC"], "inel-member");
    let p = app
        .create_booking(&pa.key, &body)
        .await
        .problem(422, "ineligible");
    assert!(
        reason_codes(&p).contains(&"member_not_found".to_string()),
        "reasons: {p}"
    );

    // A policy that ended in 2025: the 2030 slot is outside it.
    let old = policy_body("2025-12-31");
    let r = app.put_policy(&pa.key, "pa-expired", &old).await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT policy: {} {}",
        r.status,
        r.text()
    );
    let member = member_body("pa-expired", "560001", 7);
    let r = app.put_member(&pa.key, "pa-old", &member).await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT member: {} {}",
        r.status,
        r.text()
    );
    let body = pa.booking_for("pa-old", &["CBC"], "inel-policy");
    let p = app
        .create_booking(&pa.key, &body)
        .await
        .problem(422, "ineligible");
    assert!(
        reason_codes(&p).contains(&"policy_inactive".to_string()),
        "reasons: {p}"
    );

    // Delhi: nobody serves 110001.
    let mut body = pa.booking_for(&pa.members[0], &["CBC"], "inel-network");
    body["address"] = json!({"pincode": "110001", "lat": 28.6315, "lon": 77.2167});
    let p = app
        .create_booking(&pa.key, &body)
        .await
        .problem(422, "ineligible");
    assert!(
        reason_codes(&p).contains(&"network_not_covered".to_string()),
        "reasons: {p}"
    );

    assert!(
        app.list_all_bookings(&pa.key, "").await.is_empty(),
        "a refused request created a booking"
    );

    let member = member_body("no-such-policy", "560001", 8);
    app.put_member(&pa.key, "pa-orphan", &member)
        .await
        .problem(422, "unknown_policy");
}

#[tokio::test]
async fn illegal_transitions_are_409_and_change_nothing() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "illegal"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let prov = w.provider(&str_of(&c["provider_id"]));

    for event in ["completed", "started", "sample_collected", "report_ready"] {
        app.provider_event(&prov.key, &id, event)
            .await
            .problem(409, "invalid_transition");
    }
    app.provider_event(&prov.key, &id, "teleport")
        .await
        .problem(400, "invalid_field");
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "pending_provider", "{got}");
    assert_eq!(
        got["version"], c["version"],
        "a refused event changed the booking: {got}"
    );

    app.cancel_booking(&pa.key, &id, "")
        .await
        .problem(422, "reason_required");
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "pending_provider");
    assert_eq!(got["version"], c["version"]);

    app.get_booking(&pa.key, "no-such-booking")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn body_over_one_megabyte_is_413() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let mut body = pa.booking(0, "huge");
    body["padding"] = json!("x".repeat(1_200_000));
    let bytes = serde_json::to_vec(&body).expect("serialise");
    app.post_raw("/v1/bookings", Some(&pa.key), "application/json", bytes)
        .await
        .problem(413, "body_too_large");
    assert!(app.list_all_bookings(&pa.key, "").await.is_empty());
}

#[tokio::test]
async fn auth_is_401_without_a_key_and_403_for_the_wrong_kind() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let provider_key = &w.provider("blr-lab-1").key;
    let agent = app.operator_key("op-agent", "agent").await;

    app.get("/v1/bookings", None)
        .await
        .problem(401, "unauthorized");
    app.get("/v1/bookings", Some("not-a-real-key"))
        .await
        .problem(401, "unauthorized");
    app.get("/v1/admin/providers", Some("test-admin-wrong"))
        .await
        .problem(401, "unauthorized");
    let r = app
        .send(
            app.request(Method::POST, "/v1/bookings", None)
                .json(&pa.booking(0, "anon")),
        )
        .await;
    r.problem(401, "unauthorized");

    app.get("/v1/admin/providers", Some(&pa.key))
        .await
        .problem(403, "forbidden");
    let catalog = json!({"name": "Evil", "category": "lab", "report_tat": "1h"});
    app.put("/v1/admin/catalog/EVIL", &pa.key, &catalog)
        .await
        .problem(403, "forbidden");
    app.get("/v1/admin/providers", Some(provider_key))
        .await
        .problem(403, "forbidden");
    app.get("/v1/admin/providers", Some(&agent))
        .await
        .problem(403, "forbidden");
    app.get("/v1/bookings", Some(provider_key))
        .await
        .problem(403, "forbidden");
    app.get("/v1/provider/bookings", Some(&pa.key))
        .await
        .problem(403, "forbidden");
    app.get("/v1/provider/bookings", Some(ADMIN_TOKEN))
        .await
        .problem(403, "forbidden");

    // The admin token still works, and sees the active network.
    let net = app
        .get("/v1/admin/providers?active=true", Some(ADMIN_TOKEN))
        .await
        .ok(200);
    let mut ids: Vec<String> = net["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {net}"))
        .iter()
        .map(|p| str_of(&p["id"]))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["blr-cbc-only", "blr-lab-1", "blr-lab-2", "mum-lab-1"],
        "{net}"
    );
}

#[tokio::test]
async fn eligibility_agrees_with_booking_refusals() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let slot = json!({"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"});

    let ok = app
        .post(
            "/v1/eligibility",
            &pa.key,
            &json!({"member_id": pa.members[0], "services": ["CBC"], "slot": slot}),
        )
        .await
        .ok(200);
    assert_eq!(ok["eligible"], true, "{ok}");
    assert_eq!(ok["copay_paise"], 0, "{ok}");

    let r = app
        .put_policy(&pa.key, "pa-expired", &policy_body("2025-12-31"))
        .await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT policy: {}",
        r.text()
    );
    let r = app
        .put_member(&pa.key, "pa-old", &member_body("pa-expired", "560001", 7))
        .await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT member: {}",
        r.text()
    );
    let no = app
        .post(
            "/v1/eligibility",
            &pa.key,
            &json!({"member_id": "pa-old", "services": ["CBC"], "slot": slot}),
        )
        .await
        .ok(200);
    assert_eq!(no["eligible"], false, "{no}");
    assert!(
        reason_codes(&no).contains(&"policy_inactive".to_string()),
        "{no}"
    );

    let no = app
        .post(
            "/v1/eligibility",
            &pa.key,
            &json!({"member_id": "pa-ghost", "services": ["CBC"], "slot": slot}),
        )
        .await
        .ok(200);
    assert_eq!(no["eligible"], false, "{no}");
    assert!(
        reason_codes(&no).contains(&"member_not_found".to_string()),
        "{no}"
    );
}

#[tokio::test]
async fn bad_reschedules_are_refused() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "bad-resched"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    app.reschedule(&pa.key, &id, "2030-01-02T10:00:00Z", "2030-01-02T09:00:00Z")
        .await
        .problem(400, "invalid_field");
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(
        got["version"], c["version"],
        "a refused reschedule changed the booking"
    );

    app.cancel_booking(&pa.key, &id, "done").await.ok(200);
    app.reschedule(&pa.key, &id, "2030-01-03T09:00:00Z", "2030-01-03T10:00:00Z")
        .await
        .problem(409, "invalid_transition");
}

#[tokio::test]
async fn problem_request_id_matches_the_header() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/bookings/anything", None).await;
    let p = r.problem(401, "unauthorized");
    let header = r.header("x-request-id").expect("x-request-id header");
    assert_eq!(p["request_id"], header.as_str(), "{p}");
    let r = app.get("/no/such/route", None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn rate_limit_is_429_per_key() {
    let app = TestApp::spawn_with("[limits]\nrequests_per_second = 1\nburst = 3\n").await;
    let partner = json!({"name": "Limited"});
    let r = app.put_partner("limited", &partner).await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT partner: {}",
        r.text()
    );
    let key = app.partner_key("limited").await;
    // The admin bucket (3, refilling at 1/s) runs dry within a few more requests.
    let mut limited = None;
    for _ in 0..10 {
        let r = app.get("/v1/admin/providers", Some(ADMIN_TOKEN)).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        r.ok(200);
    }
    let r = limited.expect("10 quick admin requests with burst 3 were never limited");
    r.problem(429, "rate_limited");
    // Another key has its own bucket.
    app.list_bookings(&key, "").await.ok(200);
}
