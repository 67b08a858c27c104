//! What the API acknowledged survives SIGKILL and SIGTERM: acked means present, in exactly
//! the acked state, once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::harness::{eventually, str_of, Partner, TestApp, World, BLR_FULL, START_DEADLINE};

const BOOKINGS: usize = 300;
const IN_FLIGHT: usize = 32;

/// The last acknowledged view of one booking.
#[derive(Clone, Debug)]
struct Acked {
    id: String,
    provider_id: String,
    state: String,
    version: Value,
}

impl Acked {
    fn from_view(b: &Value) -> Acked {
        Acked {
            id: str_of(&b["id"]),
            provider_id: str_of(&b["provider_id"]),
            state: str_of(&b["state"]),
            version: b["version"].clone(),
        }
    }
}

/// Creates `n` bookings with `in_flight` requests at a time; returns the acked views.
async fn create_many(
    app: &TestApp,
    pa: &Partner,
    prefix: &str,
    n: usize,
    in_flight: usize,
) -> Vec<Acked> {
    stream::iter(0..n)
        .map(|i| {
            let body = pa.booking(i % pa.members.len(), &format!("{prefix}-{i}"));
            async move { Acked::from_view(&app.create_booking(&pa.key, &body).await.ok(201)) }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await
}

/// Moves booking `i` according to `i % 4`: leave it, accept it, run it to completed, or
/// cancel it. Returns the last acked view.
async fn move_one(app: &TestApp, w: &World, i: usize, b: Acked) -> Acked {
    let key = &w.provider(&b.provider_id).key;
    let events: &[&str] = match i % 4 {
        1 => &["accept"],
        2 => &["accept", "started", "completed"],
        _ => &[],
    };
    let mut last = b;
    for event in events {
        let view = app.provider_event(key, &last.id, event).await.ok(200);
        last = Acked::from_view(&view);
    }
    if i % 4 == 3 {
        let view = app
            .cancel_booking(&w.partner.key, &last.id, "crash test")
            .await
            .ok(200);
        last = Acked::from_view(&view);
    }
    last
}

/// Every acked booking reads back in its acked state and version, and the partner's list
/// holds exactly the acked ids.
async fn assert_all_present(app: &TestApp, pa: &Partner, acked: &[Acked]) {
    let mismatches: Vec<String> = stream::iter(acked)
        .map(|a| async move {
            let r = app.get_booking(&pa.key, &a.id).await;
            if r.status != 200 {
                return Some(format!(
                    "{}: acked {} but GET is {} {}",
                    a.id,
                    a.state,
                    r.status,
                    r.text()
                ));
            }
            let got = r.json();
            (got["state"] != a.state.as_str() || got["version"] != a.version).then(|| {
                format!(
                    "{}: acked {} v{}, read back {} v{}",
                    a.id, a.state, a.version, got["state"], got["version"]
                )
            })
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    assert!(
        mismatches.is_empty(),
        "{} of {} acked bookings differ after restart, e.g. {:#?}",
        mismatches.len(),
        acked.len(),
        &mismatches[..mismatches.len().min(10)]
    );
    let listed = app.list_all_bookings(&pa.key, "").await;
    let listed_ids: HashSet<String> = listed.iter().map(|b| str_of(&b["id"])).collect();
    let acked_ids: HashSet<String> = acked.iter().map(|a| a.id.clone()).collect();
    assert_eq!(listed.len(), acked.len(), "listed count != acked count");
    assert_eq!(listed_ids, acked_ids, "listed ids != acked ids");
}

#[tokio::test]
async fn sigkill_after_acks_loses_nothing() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    let created = create_many(&app, pa, "crash", BOOKINGS, IN_FLIGHT).await;
    let ids: HashSet<&str> = created.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), BOOKINGS, "two creates returned the same id");

    let app_ref = &app;
    let acked: Vec<Acked> = stream::iter(created.into_iter().enumerate())
        .map(|(i, b)| move_one(app_ref, &w, i, b))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    app.kill9().await;

    app.restart().await;
    let states: HashMap<&str, usize> = acked.iter().fold(HashMap::new(), |mut m, a| {
        *m.entry(a.state.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        states.get("completed"),
        Some(&(BOOKINGS / 4)),
        "acked states {states:?}"
    );
    assert_all_present(&app, pa, &acked).await;
}

#[tokio::test]
async fn timelines_and_audit_chain_survive_sigkill() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let auditor = app.operator_key("op-auditor", "agent").await;
    let created = create_many(&app, pa, "audit", 16, 8).await;
    let app_ref = &app;
    let acked: Vec<Acked> = stream::iter(created.into_iter().enumerate())
        .map(|(i, b)| move_one(app_ref, &w, i, b))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut before = Vec::new();
    for a in &acked {
        before.push(app.timeline(&pa.key, &a.id).await.ok(200));
    }
    app.kill9().await;

    app.restart().await;
    for (a, tl) in acked.iter().zip(&before) {
        let after = app.timeline(&pa.key, &a.id).await.ok(200);
        assert_eq!(&after, tl, "timeline of {} changed across SIGKILL", a.id);
    }
    let verify = app
        .get("/v1/ops/audit/verify", Some(&auditor))
        .await
        .ok(200);
    assert_eq!(
        verify["ok"], true,
        "audit chain broken after SIGKILL: {verify}"
    );
}

#[tokio::test]
async fn sigterm_exits_zero_and_restart_serves_the_same_data() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let created = create_many(&app, pa, "term", 12, 4).await;
    let app_ref = &app;
    let acked: Vec<Acked> = stream::iter(created.into_iter().enumerate())
        .map(|(i, b)| move_one(app_ref, &w, i, b))
        .buffer_unordered(4)
        .collect()
        .await;

    let status = app.terminate().await;
    assert!(
        status.success(),
        "SIGTERM exit status {status:?} (want 0); log tail:\n{}",
        app.log_tail()
    );
    app.restart().await;
    app.get("/readyz", None).await.ok(200);
    assert_all_present(&app, pa, &acked).await;

    // Still writable after the restart, and the providers' keys still work.
    let b = app
        .create_booking(&pa.key, &pa.booking(0, "after-restart"))
        .await
        .ok(201);
    let prov = w.provider(&str_of(&b["provider_id"]));
    let acc = app
        .provider_event(&prov.key, &str_of(&b["id"]), "accept")
        .await
        .ok(200);
    assert_eq!(acc["state"], "confirmed");
}

#[tokio::test]
async fn sigterm_under_load_keeps_every_acked_booking() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let acks = AtomicUsize::new(0);
    let enough = Notify::new();

    let app_ref = &app;
    let load = stream::iter(0..200)
        .map(|i| {
            let body = pa.booking(i % pa.members.len(), &format!("drain-{i}"));
            let (acks, enough) = (&acks, &enough);
            async move {
                let rb = app_ref
                    .request(Method::POST, "/v1/bookings", Some(&pa.key))
                    .json(&body);
                let r = app_ref.try_send(rb).await;
                if matches!(&r, Ok(r) if r.status == 201)
                    && acks.fetch_add(1, Ordering::SeqCst) + 1 == 20
                {
                    enough.notify_one();
                }
                r
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let stop = async {
        tokio::time::timeout(START_DEADLINE, enough.notified())
            .await
            .expect("20 creates were not acked within 30 s");
        app_ref.signal_term().await;
    };
    let (results, ()) = futures::join!(load, stop);

    let mut acked = Vec::new();
    let mut lost = 0;
    for r in results {
        match r {
            Ok(r) if r.status == 201 => acked.push(Acked::from_view(&r.json())),
            Ok(r) if r.status == 503 => lost += 1,
            Ok(r) => panic!(
                "unexpected answer while stopping: {} {}",
                r.status,
                r.text()
            ),
            Err(_) => lost += 1,
        }
    }
    let status = app.wait_exit().await;
    assert!(
        status.success(),
        "SIGTERM under load: exit status {status:?} (want 0); log tail:\n{}",
        app.log_tail()
    );
    assert!(acked.len() >= 20, "only {} acked", acked.len());

    app.restart().await;
    for a in &acked {
        let got = app.get_booking(&pa.key, &a.id).await.ok(200);
        assert_eq!(got["state"], a.state.as_str(), "{}", a.id);
        assert_eq!(got["version"], a.version, "{}", a.id);
    }
    let listed = app.list_all_bookings(&pa.key, "").await;
    assert!(
        listed.len() >= acked.len() && listed.len() <= acked.len() + lost,
        "listed {} bookings; acked {}, unanswered {lost}",
        listed.len(),
        acked.len()
    );
}

#[tokio::test]
async fn a_pending_sla_timer_fires_after_sigkill() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    for id in BLR_FULL {
        World::reconfigure_provider(&app, id, |b| b["sla"]["accept_within"] = json!("3s")).await;
    }
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "timer-crash"))
        .await
        .ok(201);
    app.kill9().await;

    app.restart().await;
    let id = str_of(&c["id"]);
    let p1 = str_of(&c["provider_id"]);
    let b = eventually(
        "the acceptance timer armed before SIGKILL to fire",
        Duration::from_secs(30),
        || async {
            let b = app.get_booking(&pa.key, &id).await.ok(200);
            (b["provider_id"] != p1.as_str()).then_some(b)
        },
    )
    .await;
    assert!(
        BLR_FULL.contains(&b["provider_id"].as_str().unwrap_or("")),
        "{b}"
    );
}

/// Runs booking `b` through accept, started, completed, recording each ack in `acked`;
/// stops at the first request that gets no answer.
async fn run_chain(
    app: &TestApp,
    w: &World,
    b: Acked,
    acked: &Mutex<HashMap<String, Acked>>,
    acks: &AtomicUsize,
    enough: &Notify,
) {
    let key = &w.provider(&b.provider_id).key;
    for event in ["accept", "started", "completed"] {
        let rb = app
            .request(
                Method::POST,
                &format!("/v1/provider/bookings/{}/events", b.id),
                Some(key),
            )
            .json(&json!({ "type": event }));
        match app.try_send(rb).await {
            Ok(r) if r.status == 200 => {
                let view = Acked::from_view(&r.json());
                acked.lock().expect("ack map").insert(view.id.clone(), view);
                if acks.fetch_add(1, Ordering::SeqCst) + 1 == 60 {
                    enough.notify_one();
                }
            }
            Ok(r) => panic!("{event} on {}: {} {}", b.id, r.status, r.text()),
            Err(_) => return,
        }
    }
}

#[tokio::test]
async fn sigkill_mid_load_keeps_acked_moves_and_whole_transitions() {
    let mut app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let created = create_many(&app, pa, "midload", 80, 16).await;
    let acked: Mutex<HashMap<String, Acked>> =
        Mutex::new(created.iter().map(|a| (a.id.clone(), a.clone())).collect());
    let (acks, enough) = (AtomicUsize::new(0), Notify::new());

    let app_ref = &app;
    let load = stream::iter(created)
        .map(|b| run_chain(app_ref, &w, b, &acked, &acks, &enough))
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    let crash = async {
        tokio::time::timeout(START_DEADLINE, enough.notified())
            .await
            .expect("60 events were not acked within 30 s");
        app_ref.signal("KILL").await;
    };
    futures::join!(load, crash);
    let _ = app.wait_exit().await;

    app.restart().await;
    let acked = acked.into_inner().expect("ack map");
    for a in acked.values() {
        let got = app.get_booking(&pa.key, &a.id).await.ok(200);
        let (have, want) = (got["version"].as_i64(), a.version.as_i64());
        assert!(
            have >= want,
            "{}: acked v{want:?} {}, read back {got}",
            a.id,
            a.state
        );
        if have == want {
            assert_eq!(
                got["state"],
                a.state.as_str(),
                "{}: same version, other state",
                a.id
            );
        }
        // The record and its audit entry were written together.
        let tl = app.timeline(&pa.key, &a.id).await.ok(200);
        let last = tl["items"]
            .as_array()
            .and_then(|i| i.iter().rev().find_map(|e| e["to_state"].as_str()));
        assert_eq!(
            last,
            got["state"].as_str(),
            "{}: timeline ends elsewhere: {tl}",
            a.id
        );
    }
    assert_eq!(app.list_all_bookings(&pa.key, "").await.len(), acked.len());
}
