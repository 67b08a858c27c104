//! Secret rotation (both secrets sign for 24 h), URL rules (no SSRF), partner isolation.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{
    assert_all_verified, book, create_endpoint, deliveries, get_endpoint, put_endpoint, step,
    wait_deliveries, Receiver, FAST_RETRIES, LIFE,
};
use crate::harness::{str_of, TestApp, World};

/// A secret the test chooses (base64 of 32 bytes).
const NEW_SECRET: &str = "whsec_ZHhzdGFjayByb3RhdGlvbiB0ZXN0IHNlY3JldCAjMiE=";
/// A secret nobody uses: nothing may verify with it.
const UNRELATED: &str = "whsec_YW4gdW5yZWxhdGVkIHNlY3JldCwgbmV2ZXIgdXNlZC4=";

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let rx = Receiver::start().await;
    let old = create_endpoint(&app, &pa.key, "rot", &rx.url("/rot"), &["*"]).await;
    // The receiver checks every request against [old, new, unrelated].
    rx.set_secrets("/rot", &[&old, NEW_SECRET, UNRELATED]).await;

    let (id, prov) = book(&app, &w, pa, 0, "wh-rot").await;
    let first = rx
        .wait_on("booking.created", "/rot", |h| !h.is_empty())
        .await;
    assert_all_verified(&first);
    assert_eq!(
        first[0].verified_by,
        vec![true, false, false],
        "before rotation only the first secret verifies"
    );
    assert_eq!(first[0].signatures.len(), 1, "{:?}", first[0].signatures);

    // Rotate: the new secret is shown once; GET never shows a secret.
    let r = put_endpoint(
        &app,
        &pa.key,
        "rot",
        &rx.url("/rot"),
        &["*"],
        Some(NEW_SECRET),
    )
    .await;
    assert!(
        r.status == 200 || r.status == 201,
        "rotation PUT: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.json()["secret"], NEW_SECRET, "{}", r.text());
    let ep = get_endpoint(&app, &pa.key, "rot").await;
    let ep_text = ep.text();
    ep.ok(200);
    assert!(
        !ep_text.contains(&old) && !ep_text.contains(NEW_SECRET),
        "GET shows a secret: {ep_text}"
    );

    // A later PUT without a secret changes nothing about signing and shows no secret.
    let r = put_endpoint(&app, &pa.key, "rot", &rx.url("/rot"), &["*"], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["secret"].is_null(),
        "a PUT without a secret shows none: {}",
        r.text()
    );

    step(&app, &prov, &id, "accept").await;
    step(&app, &prov, &id, "started").await;
    let hits = rx
        .wait_on("two events after rotation", "/rot", |h| h.len() >= 3)
        .await;
    assert_all_verified(&hits);
    let types: Vec<&str> = hits.iter().map(|h| h.ty()).collect();
    assert_eq!(types, &LIFE[..3]);
    for h in &hits[1..] {
        assert_eq!(
            h.signatures.len(),
            2,
            "{}: webhook-signature during the overlap must carry two space-separated \
             signatures: {:?}",
            h.ty(),
            h.signatures
        );
        assert!(h.signatures.iter().all(|s| s.starts_with("v1,")));
        assert_eq!(
            h.verified_by,
            vec![true, true, false],
            "{}: standardwebhooks must accept the request with the old and with the new \
             secret (and not with an unrelated one)",
            h.ty()
        );
        // Each signature is valid for exactly one of the two secrets, and each secret has one.
        let mut owners = HashSet::new();
        for (sig, valid) in h.signatures.iter().zip(&h.sig_valid) {
            let which: Vec<usize> = (0..valid.len()).filter(|&i| valid[i]).collect();
            assert_eq!(
                which.len(),
                1,
                "signature {sig} verifies with secrets {which:?} of [old, new, unrelated]"
            );
            owners.insert(which[0]);
        }
        assert_eq!(
            owners,
            HashSet::from([0, 1]),
            "one signature per secret: {:?}",
            h.sig_valid
        );
    }
}

#[tokio::test]
async fn private_and_link_local_urls_are_refused() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    for (i, url) in [
        "http://10.0.0.1/x",
        "https://169.254.169.254/",
        "https://10.0.0.1/x",
        "https://192.168.1.5/hook",
        "https://172.16.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://example.com/hook",
        "ftp://example.com/hook",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("bad-{i}");
        let r = put_endpoint(&app, &pa.key, &id, url, &["*"], None).await;
        let p = r.problem(400, "invalid_field");
        assert!(
            p["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["field"] == "url")),
            "{url}: the problem should name the url field: {p}"
        );
        get_endpoint(&app, &pa.key, &id)
            .await
            .problem(404, "not_found");
    }
    // Loopback over http is fine for the listed hosts (the default allow_http_hosts).
    create_endpoint(&app, &pa.key, "loop", "http://127.0.0.1:9/x", &["*"]).await;
    create_endpoint(&app, &pa.key, "lh", "http://localhost:9/x", &["*"]).await;
    create_endpoint(
        &app,
        &pa.key,
        "pub",
        "https://hooks.example.com/x",
        &["booking.created"],
    )
    .await;
    // Other fields are checked too.
    put_endpoint(
        &app,
        &pa.key,
        "e1",
        "https://hooks.example.com/x",
        &["nope"],
        None,
    )
    .await
    .problem(400, "invalid_field");
    put_endpoint(
        &app,
        &pa.key,
        "e2",
        "https://hooks.example.com/x",
        &["*"],
        Some("not-a-secret"),
    )
    .await
    .problem(400, "invalid_field");
}

#[tokio::test]
async fn a_partner_never_sees_lists_or_replays_another_partners_deliveries() {
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let pb = World::add_partner(&app, "pb").await;
    let rx = Receiver::start().await;
    // Both partners name their endpoint "main"; pa also has one that always fails.
    let sa = create_endpoint(&app, &pa.key, "main", &rx.url("/pa"), &["*"]).await;
    let sb = create_endpoint(&app, &pb.key, "main", &rx.url("/pb"), &["*"]).await;
    rx.set_plan("/pa-dead", &[], 500).await;
    let sd = create_endpoint(
        &app,
        &pa.key,
        "dead",
        &rx.url("/pa-dead"),
        &["booking.created"],
    )
    .await;
    rx.set_secrets("/pa", &[&sa]).await;
    rx.set_secrets("/pb", &[&sb]).await;
    rx.set_secrets("/pa-dead", &[&sd]).await;

    let (a_id, a_prov) = book(&app, &w, pa, 0, "wh-iso-a").await;
    step(&app, &a_prov, &a_id, "accept").await;
    let (b_id, _) = book(&app, &w, &pb, 0, "wh-iso-b").await;

    rx.wait_on("pa's two events", "/pa", |h| h.len() >= 2).await;
    rx.wait_on("pb's event", "/pb", |h| !h.is_empty()).await;
    let pa_dead = wait_deliveries(
        &app,
        &pa.key,
        "pa's failing delivery dead",
        "status=dead",
        |items| !items.is_empty(),
    )
    .await;

    let hits = rx.hits().await;
    assert_all_verified(&hits);
    for h in &hits {
        match h.path.as_str() {
            "/pb" => {
                assert_eq!(h.partner_id.as_deref(), Some("pb"), "{}", h.body);
                assert_eq!(h.booking(), b_id, "pb's endpoint got {}", h.body);
            }
            "/pa" | "/pa-dead" => {
                assert_eq!(h.partner_id.as_deref(), Some("pa"), "{}", h.body);
                assert_eq!(h.booking(), a_id, "pa's endpoint got {}", h.body);
            }
            other => panic!("request to unexpected path {other}"),
        }
    }
    // pb's endpoint is pb's own; pa's is unchanged.
    let eb = get_endpoint(&app, &pb.key, "main").await.ok(200);
    assert_eq!(eb["url"], rx.url("/pb"), "{eb}");
    let ea = get_endpoint(&app, &pa.key, "main").await.ok(200);
    assert_eq!(ea["url"], rx.url("/pa"), "{ea}");
    get_endpoint(&app, &pb.key, "dead")
        .await
        .problem(404, "not_found");

    // Lists: pb sees only its own deliveries.
    let pa_list = deliveries(&app, &pa.key, "").await;
    let pb_list = deliveries(&app, &pb.key, "").await;
    assert!(!pa_list.is_empty() && !pb_list.is_empty());
    let pa_ids: HashSet<String> = pa_list.iter().map(|d| str_of(&d["id"])).collect();
    for d in &pb_list {
        assert_eq!(
            d["booking_id"],
            json!(b_id),
            "pb lists a delivery that is not about its booking: {d}"
        );
        assert!(
            !pa_ids.contains(&str_of(&d["id"])),
            "pb lists pa's delivery {d}"
        );
    }
    assert!(pa_list.iter().all(|d| d["booking_id"] == json!(a_id)));
    assert!(
        deliveries(&app, &pb.key, &format!("booking_id={a_id}"))
            .await
            .is_empty(),
        "pb can filter on pa's booking"
    );

    // Replay: pa's delivery is a 404 for pb, single or in bulk.
    let dead_id = str_of(&pa_dead[0]["id"]);
    for d in pa_list.iter().map(|d| str_of(&d["id"])) {
        app.post(
            &format!("/v1/webhook-deliveries/{d}/replay"),
            &pb.key,
            &json!({}),
        )
        .await
        .problem(404, "not_found");
    }
    let r = app
        .post(
            "/v1/webhook-deliveries/replay",
            &pb.key,
            &json!({"status": "dead"}),
        )
        .await
        .ok(202);
    assert_eq!(
        r["replayed"], 0,
        "pb's bulk replay touched pa's dead delivery: {r}"
    );
    let still: Vec<Value> = deliveries(&app, &pa.key, "status=dead").await;
    assert!(
        still.iter().any(|d| str_of(&d["id"]) == dead_id),
        "pa's dead delivery changed after pb's replay: {still:?}"
    );
    // pa itself may replay it (so the 404s above are about tenancy, not replay).
    app.post(
        &format!("/v1/webhook-deliveries/{dead_id}/replay"),
        &pa.key,
        &json!({}),
    )
    .await
    .ok(202);
}
