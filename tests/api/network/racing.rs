//! Provider writes racing bookings. Routing reads the network from an in-memory index that
//! moves at commit, so the committer ends a batch after a provider write: a booking never
//! routes on a network older than the writes acknowledged before it was sent, and never
//! fails because a provider changed in its batch.

use futures::future::join_all;

use super::{blr_booking, lab, Net, BLR};
use crate::harness::{str_of, TestApp};

const ROUNDS: usize = 8;

/// Provider `rc-i` sits `2.0 - 0.2 i` km north of the address: each new one is the nearest.
fn racer(i: usize) -> serde_json::Value {
    lab(BLR.0 + (2.0 - 0.2 * i as f64) / 111.0, BLR.1, BLR.2)
}

#[tokio::test]
async fn bookings_sent_after_a_provider_write_route_on_it_and_racing_ones_never_fail() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    net.add(&app, "rc-base", &lab(BLR.0 + 0.05, BLR.1, BLR.2))
        .await;
    for i in 0..ROUNDS {
        let id = format!("rc-{i:02}");
        // Two bookings race the write: either network is fine, a failure is not.
        let body = racer(i);
        let bodies: Vec<_> = (0..2)
            .map(|k| blr_booking(net.member(k), &format!("rc-race-{i}-{k}")))
            .collect();
        let (put, racing) = tokio::join!(
            app.put_provider(&id, &body),
            join_all(bodies.iter().map(|b| app.create_booking(net.pk(), b)))
        );
        put.ok(201);
        for r in racing {
            let b = r.ok(201);
            let chosen = str_of(&b["provider_id"]);
            let allowed = i
                .checked_sub(1)
                .map_or("rc-base".to_string(), |p| format!("rc-{p:02}"));
            assert!(
                chosen == id || chosen == allowed,
                "round {i}: a racing booking went to {chosen}: {}",
                b["routing"]
            );
        }
        // Sent after the write was acknowledged: the new, nearest provider takes it.
        let after = app
            .create_booking(
                net.pk(),
                &blr_booking(net.member(2 + i % 2), &format!("rc-after-{i}")),
            )
            .await
            .ok(201);
        assert_eq!(after["provider_id"], id.as_str(), "{}", after["routing"]);
        net.keys.insert(id.clone(), String::new());
    }
}
