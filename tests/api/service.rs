//! Service endpoints, start-up config checks and admin PUT semantics.

use serde_json::json;

use crate::harness::{TestApp, World, ADMIN_TOKEN};

#[tokio::test]
async fn health_ready_metrics_and_openapi() {
    let app = TestApp::spawn().await;
    // Ready as soon as the listening line is printed.
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, 200, "/readyz right after start: {}", r.text());
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status, 200, "/healthz: {}", r.text());
    assert!(
        r.header("x-request-id").is_some(),
        "/healthz lacks x-request-id"
    );

    // Some traffic first, so request metrics have samples.
    let _ = World::build(&app).await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    assert!(
        r.content_type().starts_with("text/plain"),
        "/metrics content-type {:?}",
        r.content_type()
    );
    let text = r.text();
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| n.starts_with("dxstack_"))
        .collect();
    assert!(
        !names.is_empty(),
        "/metrics has no dxstack_ samples:\n{text}"
    );

    let api = app.get("/openapi.json", None).await.ok(200);
    assert!(
        api["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "openapi version: {}",
        api["openapi"]
    );
    let paths = api["paths"].as_object().expect("openapi paths object");
    for p in [
        "/v1/bookings",
        "/v1/bookings/{id}",
        "/v1/provider/bookings/{id}/events",
    ] {
        assert!(
            paths.contains_key(p),
            "openapi.json lacks {p}; has {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn unknown_config_key_stops_start_up_naming_the_key() {
    let out = TestApp::spawn_expecting_failure("[server]\nlisten_backlog_bogus = 7\n").await;
    assert!(
        out.contains("listen_backlog_bogus"),
        "start-up error does not name the unknown key:\n{out}"
    );
    let out = TestApp::spawn_expecting_failure("[sla]\nat_risk_ratio = \"lots\"\n").await;
    assert!(
        out.contains("at_risk_ratio"),
        "start-up error does not name the bad key:\n{out}"
    );
}

#[tokio::test]
async fn extra_config_is_honoured() {
    // A smaller body limit from config applies to JSON bodies.
    let app = TestApp::spawn_with("[server]\nmax_body = \"2KB\"\n").await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let mut body = pa.booking(0, "small-limit");
    body["padding"] = json!("y".repeat(4096));
    app.create_booking(&pa.key, &body)
        .await
        .problem(413, "body_too_large");
    app.create_booking(&pa.key, &pa.booking(0, "small-ok"))
        .await
        .ok(201);
}

#[tokio::test]
async fn admin_put_is_201_when_created_and_200_when_replaced() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Complete blood count", "category": "lab", "report_tat": "24h"});
    let created = app.put_catalog("CBC", &body).await.ok(201);
    assert_eq!(created["name"], "Complete blood count", "{created}");
    let body = json!({"name": "CBC v2", "category": "lab", "report_tat": "12h"});
    let replaced = app.put_catalog("CBC", &body).await.ok(200);
    assert_eq!(replaced["name"], "CBC v2", "{replaced}");

    app.put_operator("op-1", "supervisor").await.ok(201);
    app.put_operator("op-1", "agent").await.ok(200);
    app.put_operator("op-2", "emperor").await.problem_any(400);

    let r = app
        .post(
            "/v1/admin/partners/ghost/keys",
            crate::harness::ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    r.problem(404, "not_found");
}

#[tokio::test]
async fn admin_lists_the_network_with_filters() {
    let app = TestApp::spawn().await;
    let _ = World::build(&app).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {v}"))
            .iter()
            .map(|p| crate::harness::str_of(&p["id"]))
            .collect();
        ids.sort();
        ids
    };
    let all = app
        .get("/v1/admin/providers", Some(ADMIN_TOKEN))
        .await
        .ok(200);
    assert_eq!(ids(&all).len(), 5, "{all}");
    let q = "/v1/admin/providers?pincode=560002&service=LIPID&active=true";
    let some = app.get(q, Some(ADMIN_TOKEN)).await.ok(200);
    assert_eq!(ids(&some), ["blr-lab-1", "blr-lab-2"], "{q}: {some}");
    let q = "/v1/admin/providers?pincode=560001&service=CBC";
    let some = app.get(q, Some(ADMIN_TOKEN)).await.ok(200);
    assert_eq!(
        ids(&some),
        ["blr-cbc-only", "blr-inactive", "blr-lab-1", "blr-lab-2"],
        "{q}: {some}"
    );
    let q = "/v1/admin/providers?active=false";
    let some = app.get(q, Some(ADMIN_TOKEN)).await.ok(200);
    assert_eq!(ids(&some), ["blr-inactive"], "{q}: {some}");
}
