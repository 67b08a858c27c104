//! Durable timers: armed timers survive SIGKILL; after a restart every overdue timer fires
//! at once, exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::{
    assert_by_timer, case_types, metric, ms, now_ms, only_entry, render, rfc3339, set_sla,
    sleep_until_ms, timeline_items, NO_REROUTE,
};
use crate::harness::{str_of, TestApp, World};

const BOOKINGS: usize = 450;
const IN_FLIGHT: usize = 32;
/// After the restart, every overdue timer has fired within this long.
const CATCH_UP: Duration = Duration::from_secs(10);

#[tokio::test]
async fn overdue_timers_fire_exactly_once_after_sigkill_and_restart() {
    let mut app = TestApp::spawn_with(NO_REROUTE).await;
    let w = World::build(&app).await;
    set_sla(&app, "20s", "2h").await;
    let pa = &w.partner;

    // Arm 450 acceptance timers (plus their at-risk timers), due ~20 s ahead.
    let t0 = Instant::now();
    let app_ref = &app;
    let created: Vec<Value> = stream::iter(0..BOOKINGS)
        .map(|i| {
            let body = pa.booking(i % pa.members.len(), &format!("sla-crash-{i}"));
            async move { app_ref.create_booking(&pa.key, &body).await.ok(201) }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let creating = t0.elapsed();
    let mut due: HashMap<String, i64> = HashMap::new();
    let mut provider: HashMap<String, String> = HashMap::new();
    for b in &created {
        let acc = only_entry(b, "acceptance");
        assert_eq!(acc["state"], "pending", "{b}");
        assert_eq!(ms(&acc["due_at"]) - ms(&acc["started_at"]), 20_000, "{acc}");
        let id = str_of(&b["id"]);
        due.insert(id.clone(), ms(&acc["due_at"]));
        provider.insert(id, str_of(&b["provider_id"]));
    }
    assert_eq!(due.len(), BOOKINGS, "duplicate booking ids");
    let first_due = *due.values().min().expect("bookings");
    let last_due = *due.values().max().expect("bookings");

    app.kill9().await;
    let killed = now_ms();
    assert!(
        killed < first_due,
        "creating {BOOKINGS} bookings took {creating:?}: the first timer was due at {} before \
         the kill at {}, so this run does not test restart",
        rfc3339(first_due),
        rfc3339(killed)
    );

    // Down until every timer is overdue, then restart.
    sleep_until_ms(last_due + 1_000).await;
    let restart_began = Instant::now();
    let restarted_ms = now_ms();
    app.restart().await;

    let (caught_up, missing) = loop {
        let items = app.list_all_bookings(&pa.key, "").await;
        assert_eq!(
            items.len(),
            BOOKINGS,
            "the list lost bookings after restart"
        );
        let missing = items
            .iter()
            .filter(|b| only_entry(b, "acceptance")["state"] != "breached")
            .map(|b| format!("{} {}", b["id"], b["sla"]))
            .collect::<Vec<_>>();
        if missing.is_empty() {
            break (Some(restart_began.elapsed()), missing);
        }
        if restart_began.elapsed() > CATCH_UP {
            break (None, missing);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        caught_up.is_some(),
        "{} of {BOOKINGS} overdue acceptance timers had not fired {CATCH_UP:?} after the \
         restart; e.g. {:?}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>()
    );
    eprintln!(
        "created {BOOKINGS} in {creating:?}; all breached {:?} after restart",
        caught_up.unwrap_or_default()
    );

    // Exactly once each: one breached entry, one sla_breach case, one sla.breached audit entry.
    let app_ref = &app;
    let checks: Vec<Result<(), String>> = stream::iter(due.iter())
        .map(|(id, due_at)| {
            let key = &pa.key;
            let provider = &provider[id];
            async move {
                let b = app_ref.get_booking(key, id).await.ok(200);
                let acc = only_entry(&b, "acceptance");
                let breached_at = ms(&acc["breached_at"]);
                if breached_at < *due_at || breached_at < restarted_ms {
                    return Err(format!(
                        "{id}: breached_at {} (due {}, restart {})",
                        rfc3339(breached_at),
                        rfc3339(*due_at),
                        rfc3339(restarted_ms)
                    ));
                }
                if b["state"] != "pending_provider" || b["provider_id"] != provider.as_str() {
                    return Err(format!("{id}: moved with reroute off: {b}"));
                }
                if case_types(&b) != ["sla_breach"] {
                    return Err(format!("{id}: cases {}", b["exceptions"]));
                }
                let tl = timeline_items(app_ref, key, id).await;
                let breaches: Vec<&Value> = tl
                    .iter()
                    .filter(|e| e["action"] == "sla.breached")
                    .collect();
                let at_risk: Vec<&Value> =
                    tl.iter().filter(|e| e["action"] == "sla.at_risk").collect();
                if breaches.len() != 1 || at_risk.len() > 1 {
                    return Err(format!(
                        "{id}: {} sla.breached, {} sla.at_risk entries:\n{}",
                        breaches.len(),
                        at_risk.len(),
                        render(&tl)
                    ));
                }
                assert_by_timer(breaches[0]);
                if at_risk
                    .first()
                    .is_some_and(|r| r["seq"].as_u64() > breaches[0]["seq"].as_u64())
                {
                    return Err(format!("{id}: at_risk after breached:\n{}", render(&tl)));
                }
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let bad: Vec<&String> = checks.iter().filter_map(|c| c.as_ref().err()).collect();
    assert!(
        bad.is_empty(),
        "{} of {BOOKINGS} bookings not breached exactly once; first: {:?}",
        bad.len(),
        bad.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        metric(
            &app,
            "dxstack_sla_outcomes_total",
            &[("kind", "acceptance"), ("state", "breached")]
        )
        .await,
        BOOKINGS as f64,
        "breaches counted by the restarted process"
    );
}
