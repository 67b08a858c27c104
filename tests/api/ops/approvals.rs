//! Roles and four-eyes approvals: `waive_copay` and `force_transition` to `completed` need a
//! second supervisor; agents may do neither.

use serde_json::{json, Value};

use super::{items, render, Ops, AGENT, SUP1, SUP2};
use crate::harness::{member_body, policy_body, str_of};

/// The India day of the standard slot (for `entitlements?on=`).
const SLOT_DAY: &str = "2030-01-01";

/// Puts policy `id` (20 % copay on labs, `annual_limit_paise` = `limit`) and member `member` on
/// it, for partner `pa`.
async fn copay_member(ops: &Ops, policy: &str, limit: i64, member: &str, n: usize) {
    let pa = &ops.w.partner;
    let mut p = policy_body("2035-12-31");
    p["benefits"][0]["copay_percent"] = json!(20);
    p["benefits"][0]["annual_limit_paise"] = json!(limit);
    let r = ops.app.put_policy(&pa.key, policy, &p).await;
    assert!(
        r.status == 200 || r.status == 201,
        "PUT policy: {}",
        r.text()
    );
    let r = ops
        .app
        .put_member(&pa.key, member, &member_body(policy, "560001", n))
        .await;
    assert!(
        r.status == 200 || r.status == 201,
        "PUT member: {}",
        r.text()
    );
}

/// `(gross, covered, copay)` of a booking.
fn amounts(b: &Value) -> (i64, i64, i64) {
    let a = &b["amounts"];
    let n = |k: &str| {
        a[k].as_i64()
            .unwrap_or_else(|| panic!("amounts.{k} missing: {b}"))
    };
    (n("gross_paise"), n("covered_paise"), n("copay_paise"))
}

/// `(amount_reserved, amount_remaining, count_reserved)` of the member's only benefit in the
/// slot's policy year.
async fn reserved(ops: &Ops, member: &str) -> (i64, Option<i64>, i64) {
    let e = ops
        .app
        .get(
            &format!("/v1/members/{member}/entitlements?on={SLOT_DAY}"),
            Some(&ops.w.partner.key),
        )
        .await
        .ok(200);
    let b = &e["benefits"][0];
    (
        b["amount_reserved_paise"]
            .as_i64()
            .unwrap_or_else(|| panic!("{e}")),
        b["amount_remaining_paise"].as_i64(),
        b["count_reserved"]
            .as_i64()
            .unwrap_or_else(|| panic!("{e}")),
    )
}

/// A CBC + LIPID booking for `member` (asserts 201).
async fn book_for(ops: &Ops, member: &str, partner_ref: &str) -> Value {
    let pa = &ops.w.partner;
    ops.app
        .create_booking(
            &pa.key,
            &pa.booking_for(member, &["CBC", "LIPID"], partner_ref),
        )
        .await
        .ok(201)
}

/// The pending approvals' ids.
async fn pending(ops: &Ops) -> Vec<String> {
    let r = ops
        .app
        .get("/v1/ops/approvals?state=pending", Some(&ops.agent))
        .await
        .ok(200);
    items(&r)
        .iter()
        .map(|a| {
            assert_eq!(a["state"], "pending", "?state=pending: {r}");
            str_of(&a["id"])
        })
        .collect()
}

#[tokio::test]
async fn waiving_a_copay_needs_a_second_supervisor_and_applies_on_approval() {
    let ops = Ops::start("").await;
    copay_member(&ops, "pa-copay", 100_000_000_000, "pa-c1", 11).await;
    let b = book_for(&ops, "pa-c1", "ops-waive").await;
    let id = str_of(&b["id"]);
    let (gross, covered, copay) = amounts(&b);
    assert_eq!(
        gross,
        ops.w.gross(&str_of(&b["provider_id"]), &["CBC", "LIPID"])
    );
    assert_eq!(copay, gross * 20 / 100, "20 % copay: {b}");
    assert_eq!(covered + copay, gross, "{b}");
    let (res0, _, count0) = reserved(&ops, "pa-c1").await;
    assert_eq!(res0, covered, "the booking reserved its covered amount");
    assert_eq!(count0, 1);

    // An agent may neither waive nor force.
    let waive = json!({"action": "waive_copay", "reason": "lab overcharged the member"});
    ops.action(&ops.agent, &id, &waive)
        .await
        .problem(403, "forbidden");
    for to in ["completed", "cancelled", "no_show"] {
        ops.action(
            &ops.agent,
            &id,
            &json!({"action": "force_transition", "to_state": to, "reason": "x"}),
        )
        .await
        .problem(403, "forbidden");
    }
    // A reason is required, also of supervisors.
    ops.action(&ops.sup1, &id, &json!({"action": "waive_copay"}))
        .await
        .problem(422, "reason_required");
    assert!(pending(&ops).await.is_empty(), "nothing requested yet");

    // A supervisor's request is only a pending approval: the booking is unchanged.
    let req = ops.action(&ops.sup1, &id, &waive).await.ok(202);
    assert_eq!(req["state"], "pending", "{req}");
    let approval = str_of(&req["approval_id"]);
    assert_eq!(amounts(&ops.booking(&id).await), (gross, covered, copay));
    assert_eq!(reserved(&ops, "pa-c1").await.0, res0);
    assert_eq!(pending(&ops).await, vec![approval.clone()]);

    // Only a supervisor other than the requester may decide.
    let ok_reason = json!({"reason": "invoice checked"});
    ops.decide(&ops.agent, &approval, "approve", &ok_reason)
        .await
        .problem(403, "forbidden");
    ops.decide(&ops.sup1, &approval, "approve", &ok_reason)
        .await
        .problem(403, "four_eyes_required");
    ops.decide(&ops.sup1, &approval, "reject", &ok_reason)
        .await
        .problem(403, "four_eyes_required");
    ops.decide(&ops.sup2, &approval, "approve", &json!({}))
        .await
        .problem(422, "reason_required");
    assert_eq!(amounts(&ops.booking(&id).await), (gross, covered, copay));
    assert_eq!(pending(&ops).await, vec![approval.clone()]);

    // The second supervisor approves: copay 0, covered = gross, the reservation grows.
    let a = ops
        .decide(&ops.sup2, &approval, "approve", &ok_reason)
        .await
        .ok(200);
    assert_eq!(a["state"], "approved", "{a}");
    assert_eq!(a["requested_by"], SUP1, "{a}");
    assert_eq!(a["decided_by"], SUP2, "{a}");
    let after = ops.booking(&id).await;
    assert_eq!(
        amounts(&after),
        (gross, gross, 0),
        "after the waiver: {after}"
    );
    assert_eq!(after["state"], "pending_provider", "{after}");
    let (res1, _, count1) = reserved(&ops, "pa-c1").await;
    assert_eq!(
        res1,
        res0 + copay,
        "the reservation grows by the waived copay"
    );
    assert_eq!(count1, 1, "still one visit reserved");

    // Decided once: no second decision, nothing pending.
    ops.decide(&ops.sup2, &approval, "approve", &ok_reason)
        .await
        .problem(409, "invalid_transition");
    ops.decide(&ops.sup2, &approval, "reject", &ok_reason)
        .await
        .problem(409, "invalid_transition");
    assert!(pending(&ops).await.is_empty());
    assert_eq!(reserved(&ops, "pa-c1").await.0, res1, "applied once");

    // Audit: the request by sup-1, the refusals, the approval by sup-2.
    let trail = ops.audit(&format!("target_id={approval}")).await;
    let approved: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "approval.approved" && e.get("outcome").is_none())
        .collect();
    assert_eq!(approved.len(), 1, "{}", render(&trail));
    assert_eq!(approved[0]["actor"]["id"], SUP2);
    assert_eq!(approved[0]["reason"], "invoice checked");
    assert_eq!(
        (
            approved[0]["from_state"].as_str(),
            approved[0]["to_state"].as_str()
        ),
        (Some("pending"), Some("approved"))
    );
    let four_eyes = trail
        .iter()
        .filter(|e| e["outcome"] == "rejected" && e["error"] == "four_eyes_required")
        .count();
    assert_eq!(four_eyes, 2, "{}", render(&trail));
    let on_booking = ops.audit(&format!("target_id={id}")).await;
    let requested: Vec<&Value> = on_booking
        .iter()
        .filter(|e| e["action"] == "approval.requested.waive_copay")
        .collect();
    assert_eq!(requested.len(), 1, "{}", render(&on_booking));
    assert_eq!(requested[0]["actor"]["id"], SUP1);
    assert_eq!(requested[0]["reason"], "lab overcharged the member");
    let agent_refusals = on_booking
        .iter()
        .filter(|e| {
            e["actor"]["id"] == AGENT && e["outcome"] == "rejected" && e["error"] == "forbidden"
        })
        .count();
    assert_eq!(agent_refusals, 4, "{}", render(&on_booking));
}

#[tokio::test]
async fn a_rejected_waiver_changes_nothing_and_a_waiver_is_capped_by_what_is_left() {
    let ops = Ops::start("").await;
    copay_member(&ops, "pa-copay", 100_000_000_000, "pa-c2", 12).await;
    let b = book_for(&ops, "pa-c2", "ops-reject").await;
    let id = str_of(&b["id"]);
    let before = amounts(&b);
    let res0 = reserved(&ops, "pa-c2").await;

    let req = ops
        .action(
            &ops.sup2,
            &id,
            &json!({"action": "waive_copay", "reason": "goodwill"}),
        )
        .await
        .ok(202);
    let approval = str_of(&req["approval_id"]);
    let a = ops
        .decide(
            &ops.sup1,
            &approval,
            "reject",
            &json!({"reason": "not justified"}),
        )
        .await
        .ok(200);
    assert_eq!(a["state"], "rejected", "{a}");
    assert_eq!(a["decided_by"], SUP1, "{a}");
    let after = ops.booking(&id).await;
    assert_eq!(
        amounts(&after),
        before,
        "a rejection changes nothing: {after}"
    );
    assert_eq!(after["version"], b["version"], "{after}");
    assert_eq!(reserved(&ops, "pa-c2").await, res0);
    ops.decide(
        &ops.sup1,
        &approval,
        "approve",
        &json!({"reason": "changed my mind"}),
    )
    .await
    .problem(409, "invalid_transition");
    assert!(pending(&ops).await.is_empty());
    let all = ops
        .app
        .get("/v1/ops/approvals", Some(&ops.agent))
        .await
        .ok(200);
    let listed: Vec<Value> = items(&all)
        .into_iter()
        .filter(|x| x["id"] == approval.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{all}");
    assert_eq!(listed[0]["state"], "rejected");

    // A benefit with only 90,000 left in the year: the waiver adds at most what is left.
    copay_member(&ops, "pa-copay-cap", 90_000, "pa-cap", 13).await;
    let b = book_for(&ops, "pa-cap", "ops-cap").await;
    let cid = str_of(&b["id"]);
    let (gross, covered, copay) = amounts(&b);
    assert_eq!((gross, covered, copay), (100_000, 80_000, 20_000), "{b}");
    let (res, left, _) = reserved(&ops, "pa-cap").await;
    assert_eq!((res, left), (80_000, Some(10_000)));
    let req = ops
        .action(
            &ops.sup1,
            &cid,
            &json!({"action": "waive_copay", "reason": "goodwill"}),
        )
        .await
        .ok(202);
    ops.decide(
        &ops.sup2,
        &str_of(&req["approval_id"]),
        "approve",
        &json!({"reason": "ok"}),
    )
    .await
    .ok(200);
    let after = ops.booking(&cid).await;
    assert_eq!(
        amounts(&after),
        (100_000, 90_000, 10_000),
        "the waiver is capped by the 10,000 left: {after}"
    );
    assert_eq!(reserved(&ops, "pa-cap").await.0, 90_000);
    assert_eq!(reserved(&ops, "pa-cap").await.1, Some(0));
}

#[tokio::test]
async fn forcing_completion_needs_approval_while_cancel_and_no_show_are_direct() {
    let ops = Ops::start("").await;
    let b = ops.book(0, "ops-force-complete").await;
    let id = str_of(&b["id"]);
    let gross = amounts(&b).0;

    let req = ops
        .action(
            &ops.sup1,
            &id,
            &json!({"action": "force_transition", "to_state": "completed", "reason": "lab confirmed by phone"}),
        )
        .await
        .ok(202);
    assert_eq!(req["state"], "pending", "{req}");
    assert_eq!(ops.booking(&id).await["state"], "pending_provider");
    let approval = str_of(&req["approval_id"]);
    ops.decide(&ops.sup1, &approval, "approve", &json!({"reason": "self"}))
        .await
        .problem(403, "four_eyes_required");
    ops.decide(
        &ops.sup2,
        &approval,
        "approve",
        &json!({"reason": "seen the report"}),
    )
    .await
    .ok(200);
    let after = ops.booking(&id).await;
    assert_eq!(after["state"], "completed", "{after}");
    assert_eq!(after["billed_paise"], gross, "{after}");
    // A finished booking takes no more actions.
    ops.action(
        &ops.sup1,
        &id,
        &json!({"action": "force_transition", "to_state": "cancelled", "reason": "x"}),
    )
    .await
    .problem(409, "invalid_transition");

    // cancelled and no_show: a supervisor, directly; an invalid target state is a 400.
    for (n, to) in [(1, "cancelled"), (2, "no_show")] {
        let b = ops.book(n, &format!("ops-force-{to}")).await;
        let bid = str_of(&b["id"]);
        let after = ops
            .action(
                &ops.sup1,
                &bid,
                &json!({"action": "force_transition", "to_state": to, "reason": "member unreachable"}),
            )
            .await
            .ok(200);
        assert_eq!(after["state"], to, "{after}");
        let trail = ops
            .audit(&format!(
                "target_id={bid}&action=booking.ops.force_transition"
            ))
            .await;
        assert_eq!(trail.len(), 1, "{}", render(&trail));
        assert_eq!(trail[0]["actor"]["id"], SUP1);
        assert_eq!(trail[0]["actor"]["role"], "supervisor");
        assert_eq!(trail[0]["from_state"], "pending_provider");
        assert_eq!(trail[0]["to_state"], to);
        assert_eq!(trail[0]["reason"], "member unreachable");
    }
    let b = ops.book(3, "ops-force-bad").await;
    ops.action(
        &ops.sup1,
        &str_of(&b["id"]),
        &json!({"action": "force_transition", "to_state": "in_progress", "reason": "x"}),
    )
    .await
    .problem_any(400);
    ops.action(
        &ops.sup1,
        &str_of(&b["id"]),
        &json!({"action": "teleport", "reason": "x"}),
    )
    .await
    .problem_any(400);
}
