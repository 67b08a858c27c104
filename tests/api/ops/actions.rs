//! Operator interventions that take effect at once: `reassign` and `extend_sla`.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    assert_within, ms, now_ms, render, sla_entry, sleep_until_ms, wait_booking, Ops, AGENT,
    NO_REROUTE,
};
use crate::harness::{str_of, BLR_FULL};

/// The other `blr-lab-*` provider.
fn other_blr(p: &str) -> &'static str {
    assert!(BLR_FULL.contains(&p), "routed outside BLR_FULL: {p}");
    if p == BLR_FULL[0] {
        BLR_FULL[1]
    } else {
        BLR_FULL[0]
    }
}

/// `GET /v1/provider/bookings/{id}` as provider `p`: the status.
async fn provider_sees(ops: &Ops, p: &str, id: &str) -> u16 {
    ops.app
        .get(
            &format!("/v1/provider/bookings/{id}"),
            Some(ops.provider_key(p)),
        )
        .await
        .status
}

#[tokio::test]
async fn reassign_moves_the_booking_to_the_next_or_the_given_provider() {
    let ops = Ops::start("").await;
    let b = ops.book(0, "ops-reassign").await;
    let id = str_of(&b["id"]);
    let first = str_of(&b["provider_id"]);
    assert_eq!(b["routing"]["attempt"], 1, "{b}");
    assert_eq!(provider_sees(&ops, &first, &id).await, 200);

    ops.action(&ops.agent, &id, &json!({"action": "reassign"}))
        .await
        .problem(422, "reason_required");

    // To the next provider.
    let after = ops
        .action(
            &ops.agent,
            &id,
            &json!({"action": "reassign", "reason": "lab closed today"}),
        )
        .await
        .ok(200);
    let second = other_blr(&first);
    assert_eq!(after["provider_id"], second, "{after}");
    assert_eq!(after["state"], "pending_provider", "{after}");
    assert_eq!(after["routing"]["attempt"], 2, "{after}");
    assert_eq!(after["routing"]["provider_id"], second, "{after}");
    let b = ops.booking(&id).await;
    assert_eq!(b["provider_id"], second, "{b}");
    let routing = ops
        .app
        .get(
            &format!("/v1/bookings/{id}/routing"),
            Some(&ops.w.partner.key),
        )
        .await
        .ok(200);
    let attempts: Vec<(u64, String)> = routing
        .as_array()
        .or_else(|| routing["items"].as_array())
        .or_else(|| routing["attempts"].as_array())
        .unwrap_or_else(|| panic!("routing attempts: {routing}"))
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap_or(0),
                str_of(&a["provider_id"]),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![(1, first.clone()), (2, second.to_string())],
        "{routing}"
    );

    // The old provider no longer sees it; the new one does and can accept.
    assert_eq!(provider_sees(&ops, &first, &id).await, 404);
    ops.app
        .provider_event(ops.provider_key(&first), &id, "accept")
        .await
        .problem(404, "not_found");
    let listed = ops
        .app
        .provider_bookings(ops.provider_key(&first), None)
        .await
        .ok(200);
    assert!(
        !listed.to_string().contains(&id),
        "the old provider still lists the booking: {listed}"
    );
    assert_eq!(provider_sees(&ops, second, &id).await, 200);
    let acc = ops
        .app
        .provider_event(ops.provider_key(second), &id, "accept")
        .await
        .ok(200);
    assert_eq!(acc["state"], "confirmed", "{acc}");

    // Audited with who, why and the provider change.
    let trail = ops
        .audit(&format!("target_id={id}&action=booking.ops.reassign"))
        .await;
    assert_eq!(trail.len(), 1, "{}", render(&trail));
    assert_eq!(trail[0]["actor"]["id"], AGENT);
    assert_eq!(trail[0]["reason"], "lab closed today");
    assert_eq!(trail[0]["from_state"], "pending_provider");
    assert_eq!(trail[0]["to_state"], "pending_provider");

    // To a given eligible provider: a CBC booking has three candidates; ask for one that is
    // not the next best.
    let pa = &ops.w.partner;
    let b = ops
        .app
        .create_booking(
            &pa.key,
            &pa.booking_for(&pa.members[1], &["CBC"], "ops-reassign-given"),
        )
        .await
        .ok(201);
    let cid = str_of(&b["id"]);
    let routed = str_of(&b["provider_id"]);
    let candidates: Vec<String> = b["routing"]["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("candidates: {b}"))
        .iter()
        .map(|c| str_of(&c["provider_id"]))
        .collect();
    assert_eq!(candidates.len(), 3, "{b}");
    let given = candidates
        .iter()
        .rev()
        .find(|c| **c != routed)
        .expect("another candidate")
        .clone();
    let version = b["version"].clone();

    // Not eligible: another city, inactive, unknown: 422, nothing changes.
    for bad in ["mum-lab-1", "blr-inactive", "no-such-lab"] {
        ops.action(
            &ops.agent,
            &cid,
            &json!({"action": "reassign", "provider_id": bad, "reason": "try"}),
        )
        .await
        .problem(422, "provider_not_eligible");
    }
    let same = ops.booking(&cid).await;
    assert_eq!(same["provider_id"], routed.as_str(), "{same}");
    assert_eq!(same["version"], version, "{same}");

    let after = ops
        .action(
            &ops.agent,
            &cid,
            &json!({"action": "reassign", "provider_id": given, "reason": "member prefers it"}),
        )
        .await
        .ok(200);
    assert_eq!(after["provider_id"], given.as_str(), "{after}");
    assert_eq!(after["routing"]["attempt"], 2, "{after}");
    assert_eq!(provider_sees(&ops, &routed, &cid).await, 404);
    assert_eq!(provider_sees(&ops, &given, &cid).await, 200);
}

#[tokio::test]
async fn extend_sla_moves_due_at_and_the_breach_fires_only_after_the_new_due() {
    let ops = Ops::start(NO_REROUTE).await;
    ops.set_accept_within("3s").await;
    let b = ops.book(0, "ops-extend").await;
    let id = str_of(&b["id"]);
    let acc = sla_entry(&b, "acceptance");
    let (started, due) = (ms(&acc["started_at"]), ms(&acc["due_at"]));
    assert_eq!(due - started, 3_000, "{acc}");

    // Bad requests change nothing.
    for body in [
        json!({"action": "extend_sla", "reason": "x"}),
        json!({"action": "extend_sla", "extend_by": "soon", "reason": "x"}),
    ] {
        ops.action(&ops.agent, &id, &body).await.problem_any(400);
    }
    ops.action(
        &ops.agent,
        &id,
        &json!({"action": "extend_sla", "extend_by": "3s"}),
    )
    .await
    .problem(422, "reason_required");

    let after = ops
        .action(
            &ops.agent,
            &id,
            &json!({"action": "extend_sla", "extend_by": "3s", "reason": "lab asked for time"}),
        )
        .await
        .ok(200);
    let extended_at = now_ms();
    assert!(
        extended_at < due - 500,
        "the extension must land well before the old due (test too slow)"
    );
    let acc = sla_entry(&after, "acceptance");
    let new_due = ms(&acc["due_at"]);
    assert_eq!(new_due, due + 3_000, "due_at moves by extend_by: {acc}");
    assert_eq!(ms(&acc["started_at"]), started, "{acc}");
    assert_within(
        "at_risk_at (80 % of the new window)",
        ms(&acc["at_risk_at"]),
        started + 4_800 - 1,
        started + 4_800 + 1,
    );
    assert_eq!(acc["state"], "pending", "{acc}");
    assert_eq!(ops.booking(&id).await["sla"], after["sla"]);

    // One second past the old due: neither breached nor at risk (the new at-risk point is
    // 4.8 s after the start), and no case.
    sleep_until_ms(due + 1_000).await;
    let b = ops.booking(&id).await;
    let acc = sla_entry(&b, "acceptance");
    assert_eq!(
        acc["state"], "pending",
        "the old timers were disarmed: {acc}"
    );
    assert!(
        ops.cases_of(&id).await.is_empty(),
        "no case before the new due"
    );

    // At the new due it breaches, on time, with a case.
    let b = wait_booking(
        &ops,
        &id,
        "the extended acceptance SLA to breach",
        Duration::from_secs(6),
        |b| sla_entry(b, "acceptance")["state"] == "breached",
    )
    .await;
    let acc = sla_entry(&b, "acceptance");
    assert_within(
        "breached_at (the new due)",
        ms(&acc["breached_at"]),
        new_due,
        new_due + 1_000,
    );
    assert!(
        ops.cases_of(&id)
            .await
            .iter()
            .any(|c| c["type"] == "sla_breach"),
        "breach case"
    );

    // Audited; the timers say when they fired.
    let trail = ops.audit(&format!("target_id={id}")).await;
    let ext: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "booking.ops.extend_sla")
        .collect();
    assert_eq!(ext.len(), 1, "{}", render(&trail));
    assert_eq!(ext[0]["reason"], "lab asked for time");
    assert_eq!(ext[0]["actor"]["id"], AGENT);
    let fired: Vec<(String, i64)> = trail
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a == "sla.at_risk" || a == "sla.breached")
        })
        .map(|e| (str_of(&e["action"]), ms(&e["at"])))
        .collect();
    assert_eq!(
        fired.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        vec!["sla.at_risk", "sla.breached"],
        "{}",
        render(&trail)
    );
    assert!(
        fired[0].1 >= started + 4_800,
        "at-risk fired at the new point"
    );
    assert!(fired[1].1 >= new_due, "breach fired at the new due");

    // No open SLA left to extend (a cancelled booking): refused.
    let b = ops.book(1, "ops-extend-cancelled").await;
    let cid = str_of(&b["id"]);
    ops.app
        .cancel_booking(&ops.w.partner.key, &cid, "not needed")
        .await
        .ok(200);
    ops.action(
        &ops.agent,
        &cid,
        &json!({"action": "extend_sla", "extend_by": "1h", "reason": "x"}),
    )
    .await
    .problem(409, "invalid_transition");
}
