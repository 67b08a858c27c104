//! A booking's whole life as audit entries: every command, the SLA timer, the operator's
//! action, personal-data reads and webhook deliveries, in order, each with its actor, action,
//! states, request id and reason.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{items, render, sla_entry, wait_booking, Ops, AGENT};
use crate::harness::{eventually, str_of};

/// A webhook receiver on 127.0.0.1: every JSON body POSTed to `/hook`, in arrival order.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!(
        "http://127.0.0.1:{}/hook",
        listener.local_addr().expect("addr").port()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    let _ = tx.send(v);
                }
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

/// One expected audit entry: action, actor `kind/id`, from → to, request id, reason.
type Want = (
    &'static str,
    String,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

/// An actual audit entry in the same shape: action, actor, from, to, request id, reason.
type Got = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn got(e: &Value) -> Got {
    let s = |k: &str| e[k].as_str().map(str::to_owned);
    (
        str_of(&e["action"]),
        format!(
            "{}/{}",
            e["actor"]["kind"].as_str().unwrap_or("?"),
            e["actor"]["id"].as_str().unwrap_or("?")
        ),
        s("from_state"),
        s("to_state"),
        s("request_id"),
        s("reason"),
    )
}

#[tokio::test]
async fn a_booking_life_yields_the_expected_audit_entries_in_order() {
    let ops = Ops::start("").await;
    ops.set_accept_within("5s").await;
    let pa = &ops.w.partner;
    let (url, mut hooks) = receiver().await;
    ops.app
        .put(
            "/v1/webhook-endpoints/ops-trail",
            &pa.key,
            &json!({"url": url, "events": ["*"]}),
        )
        .await
        .ok(201);

    // create
    let b = ops
        .send_as(
            Method::POST,
            "/v1/bookings",
            &pa.key,
            "rq-create",
            Some(&pa.booking(0, "ops-trail")),
        )
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    let provider = str_of(&b["provider_id"]);
    let pkey = ops.provider_key(&provider).to_string();

    // The acceptance SLA goes at risk (4 s of 5 s); then the provider accepts in time.
    wait_booking(
        &ops,
        &id,
        "the acceptance SLA to go at risk",
        Duration::from_secs(8),
        |b| sla_entry(b, "acceptance")["state"] != "pending",
    )
    .await;
    let path = format!("/v1/provider/bookings/{id}/events");
    let acc = ops
        .send_as(
            Method::POST,
            &path,
            &pkey,
            "rq-accept",
            Some(&json!({"type": "accept"})),
        )
        .await
        .ok(200);
    assert_eq!(acc["state"], "confirmed", "{acc}");

    // Reads of the member's personal data: the provider (accepted) and the partner.
    let pview = format!("/v1/provider/bookings/{id}");
    ops.send_as(Method::GET, &pview, &pkey, "rq-provider-read", None)
        .await
        .ok(200);
    let mview = format!("/v1/members/{}", pa.members[0]);
    ops.send_as(Method::GET, &mview, &pa.key, "rq-member-read", None)
        .await
        .ok(200);

    // An operator gives the lab more time, with a reason.
    let extend =
        json!({"action": "extend_sla", "extend_by": "1h", "reason": "member asked for later"});
    ops.send_as(
        Method::POST,
        &format!("/v1/ops/bookings/{id}/actions"),
        &ops.agent,
        "rq-extend",
        Some(&extend),
    )
    .await
    .ok(200);

    // started → report_ready → completed
    for (rid, body) in [
        ("rq-started", json!({"type": "started"})),
        (
            "rq-report",
            json!({"type": "report_ready", "report_url": "https://lab.example/r/1"}),
        ),
        ("rq-completed", json!({"type": "completed"})),
    ] {
        ops.send_as(Method::POST, &path, &pkey, rid, Some(&body))
            .await
            .ok(200);
    }
    assert_eq!(ops.booking(&id).await["state"], "completed");

    // The booking's entries, oldest first.
    let trail = ops.audit(&format!("target_id={id}")).await;
    let seqs: Vec<u64> = trail.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    let p = format!("provider/{provider}");
    let want: Vec<Want> = vec![
        (
            "booking.create",
            format!("partner/{}", pa.id),
            None,
            Some("pending_provider"),
            Some("rq-create"),
            None,
        ),
        (
            "sla.at_risk",
            "system/timer".into(),
            Some("pending_provider"),
            Some("pending_provider"),
            None,
            None,
        ),
        (
            "booking.accept",
            p.clone(),
            Some("pending_provider"),
            Some("confirmed"),
            Some("rq-accept"),
            None,
        ),
        (
            "booking.ops.extend_sla",
            format!("operator/{AGENT}"),
            Some("confirmed"),
            Some("confirmed"),
            Some("rq-extend"),
            Some("member asked for later"),
        ),
        (
            "booking.started",
            p.clone(),
            Some("confirmed"),
            Some("in_progress"),
            Some("rq-started"),
            None,
        ),
        (
            "booking.report_ready",
            p.clone(),
            Some("in_progress"),
            Some("in_progress"),
            Some("rq-report"),
            None,
        ),
        (
            "booking.completed",
            p.clone(),
            Some("in_progress"),
            Some("completed"),
            Some("rq-completed"),
            None,
        ),
    ];
    let actual: Vec<_> = trail.iter().map(got).collect();
    let matches = |w: &Want, g: &Got| {
        w.0 == g.0
            && w.1 == g.1
            && w.2.map(str::to_owned) == g.2
            && w.3.map(str::to_owned) == g.3
            // the timer's request id is its own; a given reason must be recorded verbatim
            && w.4.is_none_or(|r| Some(r.to_owned()) == g.4)
            && w.5.is_none_or(|r| Some(r.to_owned()) == g.5)
    };
    assert_eq!(
        actual.len(),
        want.len(),
        "the booking's audit entries:\n{}",
        render(&trail)
    );
    for (i, (w, g)) in want.iter().zip(&actual).enumerate() {
        assert!(
            matches(w, g),
            "entry {i}: want {w:?}\n got {g:?}\nwhole trail:\n{}",
            render(&trail)
        );
    }
    for e in &trail {
        assert!(
            e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "every entry carries a request id: {e}"
        );
        assert_eq!(e["target"]["kind"], "booking", "{e}");
    }
    let at_risk = &trail[1];
    assert!(
        at_risk["reason"]
            .as_str()
            .is_some_and(|r| r.contains("acceptance")),
        "the timer says which SLA: {at_risk}"
    );

    // The partner's timeline shows the same entries.
    let tl = ops.app.timeline(&pa.key, &id).await.ok(200);
    let tl_seqs: Vec<u64> = items(&tl)
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(tl_seqs, seqs, "timeline vs ops audit");

    // Personal-data reads: one entry each, by who read, with the request id and the route.
    let reads = ops
        .audit(&format!(
            "target_id={}/{}&action=member.personal_data_read",
            pa.id, pa.members[0]
        ))
        .await;
    let reads: Vec<(String, Option<String>)> = reads
        .iter()
        .map(|e| {
            let g = got(e);
            (g.1, g.4)
        })
        .collect();
    assert_eq!(
        reads,
        vec![
            (p.clone(), Some("rq-provider-read".into())),
            (format!("partner/{}", pa.id), Some("rq-member-read".into())),
        ],
        "member.personal_data_read entries"
    );

    // Webhooks: the receiver gets the booking's events in order; each delivery is audited.
    let want_events = [
        "booking.created",
        "sla.at_risk",
        "booking.confirmed",
        "booking.in_progress",
        "booking.completed",
    ];
    let mut received: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while received.len() < want_events.len() {
        match tokio::time::timeout_at(deadline, hooks.recv()).await {
            Ok(Some(v)) => received.push(v),
            _ => break,
        }
    }
    let types: Vec<String> = received.iter().map(|v| str_of(&v["type"])).collect();
    assert_eq!(types, want_events, "webhook events received, in order");
    for v in &received {
        assert_eq!(v["partner_id"], pa.id.as_str(), "{v}");
    }
    let deliveries = eventually(
        "every delivery to be delivered",
        Duration::from_secs(10),
        || async {
            let r = ops
                .app
                .get(
                    &format!("/v1/webhook-deliveries?booking_id={id}"),
                    Some(&pa.key),
                )
                .await
                .ok(200);
            let ds = items(&r);
            (ds.len() == want_events.len() && ds.iter().all(|d| d["status"] == "delivered"))
                .then_some(ds)
        },
    )
    .await;
    let mut delivered_seqs = Vec::new();
    for d in &deliveries {
        let did = str_of(&d["id"]);
        let es = ops.audit(&format!("target_id={did}")).await;
        assert_eq!(es.len(), 1, "one entry per delivery:\n{}", render(&es));
        let e = &es[0];
        assert_eq!(e["action"], "webhook.delivered", "{e}");
        assert_eq!(e["actor"]["kind"], "system", "{e}");
        assert_eq!(e["to_state"], "delivered", "{e}");
        assert!(
            e["reason"].as_str().is_some_and(|r| r.contains("200")),
            "{e}"
        );
        delivered_seqs.push((str_of(&d["type"]), e["seq"].as_u64().unwrap_or(0)));
    }
    delivered_seqs.sort_by_key(|x| x.1);
    let order: Vec<&str> = delivered_seqs.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(order, want_events, "deliveries audited in event order");
}
