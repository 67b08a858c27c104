//! Concurrent moves on one booking: each transition is applied once, acks agree with reads.

use futures::future::join_all;

use super::{to_states, version};
use crate::harness::{str_of, TestApp, World};

#[tokio::test]
async fn concurrent_events_on_one_booking_apply_once() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let c = app
        .create_booking(&pa.key, &pa.booking(0, "race-accept"))
        .await
        .ok(201);
    let id = str_of(&c["id"]);
    let prov = w.provider(&str_of(&c["provider_id"]));
    let resps = join_all((0..10).map(|_| app.provider_event(&prov.key, &id, "accept"))).await;
    let ok: Vec<_> = resps.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.len(),
        1,
        "{} of 10 concurrent accepts succeeded",
        ok.len()
    );
    for r in resps.iter().filter(|r| r.status != 200) {
        r.problem(409, "invalid_transition");
    }
    let got = app.get_booking(&pa.key, &id).await.ok(200);
    assert_eq!(got["state"], "confirmed");
    assert_eq!(got["version"], ok[0].json()["version"], "{got}");
    let tl = app.timeline(&pa.key, &id).await.ok(200);
    let accepts = to_states(&tl).iter().filter(|s| *s == "confirmed").count();
    assert_eq!(accepts, 1, "timeline records {accepts} accepts: {tl}");
}

#[tokio::test]
async fn racing_accept_and_cancel_end_in_the_last_acked_state() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    for n in 0..8 {
        let c = app
            .create_booking(&pa.key, &pa.booking(n % 4, &format!("race-{n}")))
            .await
            .ok(201);
        let id = str_of(&c["id"]);
        let prov = w.provider(&str_of(&c["provider_id"]));
        let (acc, can) = futures::join!(
            app.provider_event(&prov.key, &id, "accept"),
            app.cancel_booking(&pa.key, &id, "race")
        );
        assert_eq!(can.status, 200, "cancel lost to accept: {}", can.text());
        let mut acked = vec![can.json()];
        if acc.status == 200 {
            acked.push(acc.json());
        } else {
            acc.problem(409, "invalid_transition");
        }
        let last = acked.iter().max_by_key(|b| version(b)).expect("one ack");
        if acked.len() == 2 {
            assert_ne!(
                acked[0]["version"], acked[1]["version"],
                "two acks, one version"
            );
        }
        let got = app.get_booking(&pa.key, &id).await.ok(200);
        assert_eq!(got["state"], "cancelled", "booking {id}: {got}");
        assert_eq!(got["state"], last["state"], "booking {id}: {got}");
        assert_eq!(got["version"], last["version"], "booking {id}: {got}");
    }
}
