//! Exception cases: the operator walk, reasons, refusals, and auto-escalation.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    assert_within, items, ms, now_ms, render, sleep_until_ms, Ops, AGENT, NO_REROUTE, SUP1,
};
use crate::harness::{eventually, str_of};

/// The `(action, by, reason)` triples of a case's history.
fn history(case: &Value) -> Vec<(String, String, Option<String>)> {
    case["history"]
        .as_array()
        .unwrap_or_else(|| panic!("case without history: {case}"))
        .iter()
        .map(|h| {
            (
                str_of(&h["action"]),
                str_of(&h["by"]),
                h["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Waits for the booking's single `sla_breach` case and returns it (from the case list).
async fn breach_case(ops: &Ops, booking: &str) -> Value {
    eventually(
        "an sla_breach case on the booking",
        Duration::from_secs(6),
        || async {
            ops.cases_of(booking)
                .await
                .into_iter()
                .find(|c| c["type"] == "sla_breach")
        },
    )
    .await
}

#[tokio::test]
async fn sla_breach_case_is_acknowledged_escalated_and_resolved_with_reasons() {
    let ops = Ops::start(&format!("{NO_REROUTE}[exceptions]\nack_within = \"1h\"\n")).await;
    ops.set_accept_within("1s").await;
    let b = ops.book(0, "ops-case-walk").await;
    let id = str_of(&b["id"]);
    let provider = str_of(&b["provider_id"]);

    // The acceptance breach opens a case, by the system.
    let listed = breach_case(&ops, &id).await;
    let case_id = str_of(&listed["id"]);
    let c = ops.case(&case_id).await;
    assert_eq!(c["state"], "open", "{c}");
    assert_eq!(
        c["severity"], "medium",
        "an SLA breach opens as medium: {c}"
    );
    assert_eq!(c["booking_id"], id.as_str(), "{c}");
    assert_eq!(c["provider_id"], provider.as_str(), "{c}");
    assert!(
        c.get("assignee").is_none_or(Value::is_null),
        "an open case has no assignee: {c}"
    );
    assert_eq!(
        history(&c),
        vec![("opened".into(), "system".into(), None)],
        "{c}"
    );
    let b = ops.booking(&id).await;
    let summary: Vec<&Value> = b["exceptions"]
        .as_array()
        .expect("exceptions")
        .iter()
        .filter(|x| x["id"] == case_id.as_str())
        .collect();
    assert_eq!(summary.len(), 1, "the booking lists its case: {b}");
    assert_eq!(summary[0]["state"], "open");

    // A reason is required: missing, empty, blank, no body at all.
    for body in [json!({}), json!({"reason": ""}), json!({"reason": "   "})] {
        ops.case_verb(&ops.agent, &case_id, "acknowledge", &body)
            .await
            .problem(422, "reason_required");
    }
    let r = ops
        .app
        .send(ops.app.request(
            reqwest::Method::POST,
            &format!("/v1/ops/exceptions/{case_id}/acknowledge"),
            Some(&ops.agent),
        ))
        .await;
    r.problem(422, "reason_required");
    for verb in ["escalate", "resolve"] {
        ops.case_verb(&ops.agent, &case_id, verb, &json!({"reason": ""}))
            .await
            .problem(422, "reason_required");
    }
    assert_eq!(
        ops.case(&case_id).await["state"],
        "open",
        "refused commands change nothing"
    );
    // Not an operator: a partner key gets no access to the queue.
    let r = ops
        .case_verb(
            &ops.w.partner.key,
            &case_id,
            "acknowledge",
            &json!({"reason": "x"}),
        )
        .await;
    assert!(
        r.status == 403 || r.status == 404,
        "a partner acknowledging a case: {} {}",
        r.status,
        r.text()
    );
    // Unknown case: 404.
    ops.case_verb(
        &ops.agent,
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "acknowledge",
        &json!({"reason": "x"}),
    )
    .await
    .problem(404, "not_found");

    // acknowledge → acknowledged, assigned to the agent.
    let c = ops
        .case_verb(
            &ops.agent,
            &case_id,
            "acknowledge",
            &json!({"reason": "calling the lab"}),
        )
        .await
        .ok(200);
    assert_eq!(c["state"], "acknowledged", "{c}");
    assert_eq!(c["severity"], "medium", "{c}");
    assert_eq!(
        c["assignee"], AGENT,
        "the acknowledging operator becomes the assignee: {c}"
    );
    ops.case_verb(
        &ops.agent,
        &case_id,
        "acknowledge",
        &json!({"reason": "again"}),
    )
    .await
    .problem(409, "invalid_transition");

    // escalate (by a supervisor) → escalated, severity high.
    let c = ops
        .case_verb(
            &ops.sup1,
            &case_id,
            "escalate",
            &json!({"reason": "lab not answering"}),
        )
        .await
        .ok(200);
    assert_eq!(c["state"], "escalated", "{c}");
    assert_eq!(c["severity"], "high", "escalation raises severity: {c}");
    ops.case_verb(
        &ops.agent,
        &case_id,
        "escalate",
        &json!({"reason": "again"}),
    )
    .await
    .problem(409, "invalid_transition");
    ops.case_verb(
        &ops.agent,
        &case_id,
        "acknowledge",
        &json!({"reason": "late"}),
    )
    .await
    .problem(409, "invalid_transition");

    // resolve → resolved; final.
    let c = ops
        .case_verb(
            &ops.agent,
            &case_id,
            "resolve",
            &json!({"reason": "member rebooked with another lab ✓"}),
        )
        .await
        .ok(200);
    assert_eq!(c["state"], "resolved", "{c}");
    for verb in ["acknowledge", "escalate", "resolve"] {
        ops.case_verb(&ops.agent, &case_id, verb, &json!({"reason": "after"}))
            .await
            .problem(409, "invalid_transition");
    }
    let c = ops.case(&case_id).await;
    assert_eq!(c["state"], "resolved", "{c}");
    assert_eq!(c["assignee"], AGENT, "{c}");
    assert_eq!(
        history(&c),
        vec![
            ("opened".into(), "system".into(), None),
            (
                "acknowledged".into(),
                AGENT.into(),
                Some("calling the lab".into())
            ),
            (
                "escalated".into(),
                SUP1.into(),
                Some("lab not answering".into())
            ),
            (
                "resolved".into(),
                AGENT.into(),
                Some("member rebooked with another lab ✓".into())
            ),
        ],
        "{c}"
    );
    assert!(ms(&c["updated_at"]) >= ms(&c["opened_at"]), "{c}");
    let resolved = ops
        .app
        .get("/v1/ops/exceptions?state=resolved", Some(&ops.agent))
        .await
        .ok(200);
    assert!(
        items(&resolved).iter().any(|x| x["id"] == case_id.as_str()),
        "?state=resolved lists the case: {resolved}"
    );

    // The audit chain has each step: who, from/to, why; refusals as rejected entries.
    let trail = ops.audit(&format!("target_id={case_id}")).await;
    let accepted: Vec<&Value> = trail
        .iter()
        .filter(|e| e.get("outcome").is_none())
        .collect();
    let steps: Vec<(String, String, String, String, String)> = accepted
        .iter()
        .map(|e| {
            (
                str_of(&e["action"]),
                str_of(&e["actor"]["id"]),
                e["from_state"].as_str().unwrap_or("-").to_owned(),
                e["to_state"].as_str().unwrap_or("-").to_owned(),
                e["reason"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let want = |a: &str, by: &str, f: &str, t: &str, r: &str| {
        (a.into(), by.into(), f.into(), t.into(), r.into())
    };
    assert_eq!(
        steps,
        vec![
            want("exception.opened", "engine", "-", "open", "-"),
            want(
                "exception.acknowledge",
                AGENT,
                "open",
                "acknowledged",
                "calling the lab"
            ),
            want(
                "exception.escalate",
                SUP1,
                "acknowledged",
                "escalated",
                "lab not answering"
            ),
            want(
                "exception.resolve",
                AGENT,
                "escalated",
                "resolved",
                "member rebooked with another lab ✓"
            ),
        ],
        "accepted audit entries of the case:\n{}",
        render(&trail)
    );
    assert_eq!(accepted[0]["actor"]["kind"], "system", "{}", accepted[0]);
    for e in &accepted[1..] {
        assert_eq!(e["actor"]["kind"], "operator", "{e}");
        assert!(
            e["actor"]["role"].is_string(),
            "operator role recorded: {e}"
        );
    }
    let refused: Vec<&Value> = trail
        .iter()
        .filter(|e| e["outcome"] == "rejected")
        .collect();
    assert!(
        refused
            .iter()
            .filter(|e| e["error"] == "invalid_transition")
            .count()
            >= 6,
        "each 409 is audited as rejected:\n{}",
        render(&trail)
    );
}

#[tokio::test]
async fn unacknowledged_cases_escalate_themselves_after_ack_within() {
    let ops = Ops::start(&format!("{NO_REROUTE}[exceptions]\nack_within = \"2s\"\n")).await;
    ops.set_accept_within("1s").await;
    let b1 = ops.book(0, "ops-auto-1").await;
    let b2 = ops.book(1, "ops-auto-2").await;
    let (id1, id2) = (str_of(&b1["id"]), str_of(&b2["id"]));

    // Manual cases: a reason is required, severity must be known.
    let raise = |body: Value| {
        let ops = &ops;
        async move { ops.app.post("/v1/ops/exceptions", &ops.agent, &body).await }
    };
    raise(json!({"booking_id": id2}))
        .await
        .problem(422, "reason_required");
    raise(json!({"booking_id": id2, "reason": " "}))
        .await
        .problem(422, "reason_required");
    raise(json!({"booking_id": id2, "reason": "x", "severity": "urgent"}))
        .await
        .problem_any(400);

    // Two manual cases on booking 2: one left alone, one acknowledged in time.
    let before = now_ms();
    let alone =
        raise(json!({"booking_id": id2, "reason": "member called twice", "severity": "low"}))
            .await
            .ok(201);
    let acked = raise(json!({"booking_id": id2, "reason": "address unclear"}))
        .await
        .ok(201);
    for c in [&alone, &acked] {
        assert_eq!(c["type"], "manual", "{c}");
        assert_eq!(c["state"], "open", "{c}");
        assert_eq!(c["booking_id"], id2.as_str(), "{c}");
        assert_within("opened_at", ms(&c["opened_at"]), before - 50, now_ms() + 50);
        let h = history(c);
        assert_eq!(h.len(), 1, "{c}");
        assert_eq!(h[0].0, "opened", "{c}");
    }
    assert_eq!(alone["severity"], "low", "{alone}");
    assert_eq!(
        history(&alone)[0],
        (
            "opened".into(),
            AGENT.into(),
            Some("member called twice".into())
        ),
        "a manual case is opened by its operator, with the reason"
    );
    let alone_id = str_of(&alone["id"]);
    let acked_id = str_of(&acked["id"]);
    ops.case_verb(
        &ops.agent,
        &acked_id,
        "acknowledge",
        &json!({"reason": "on it"}),
    )
    .await
    .ok(200);

    // Booking 1 breaches at ~1 s: its sla_breach case is left alone too.
    let breach = breach_case(&ops, &id1).await;
    let breach_id = str_of(&breach["id"]);

    // Each open case escalates itself ack_within (2 s) after it opened, by the system.
    for (cid, was) in [(&alone_id, "low"), (&breach_id, "medium")] {
        let opened = ms(&ops.case(cid).await["opened_at"]);
        let c = eventually(
            "the open case to escalate itself",
            Duration::from_secs(6),
            || async {
                let c = ops.case(cid).await;
                (c["state"] != "open").then_some(c)
            },
        )
        .await;
        let seen = now_ms();
        assert_eq!(c["state"], "escalated", "{c}");
        assert_eq!(
            c["severity"], "high",
            "was {was}; escalation raises it: {c}"
        );
        let last = history(&c).pop().expect("history");
        assert_eq!(
            (last.0.as_str(), last.1.as_str()),
            ("escalated", "system"),
            "{c}"
        );
        assert!(last.2.is_some(), "the system gives a reason: {c}");
        let escalated_at = ms(&c["updated_at"]);
        assert_within(
            "escalation time (opened_at + 2 s)",
            escalated_at,
            opened + 2_000,
            opened + 3_000,
        );
        assert!(seen >= opened + 2_000);
        // Audited as a system action on the case.
        let trail = ops.audit(&format!("target_id={cid}")).await;
        let esc: Vec<&Value> = trail
            .iter()
            .filter(|e| e["action"] == "exception.escalated")
            .collect();
        assert_eq!(esc.len(), 1, "one escalation entry:\n{}", render(&trail));
        assert_eq!(esc[0]["actor"]["kind"], "system", "{}", esc[0]);
        assert_eq!(
            (esc[0]["from_state"].as_str(), esc[0]["to_state"].as_str()),
            (Some("open"), Some("escalated")),
            "{}",
            esc[0]
        );
    }

    // The acknowledged one stays acknowledged well past its deadline.
    sleep_until_ms(ms(&acked["opened_at"]) + 3_500).await;
    let c = ops.case(&acked_id).await;
    assert_eq!(c["state"], "acknowledged", "{c}");
    assert_eq!(history(&c).len(), 2, "nothing after the ack: {c}");
    let escalated = ops
        .app
        .get("/v1/ops/exceptions?state=escalated", Some(&ops.agent))
        .await
        .ok(200);
    let ids: Vec<String> = items(&escalated).iter().map(|c| str_of(&c["id"])).collect();
    assert!(
        ids.contains(&alone_id) && ids.contains(&breach_id) && !ids.contains(&acked_id),
        "?state=escalated lists the two escalated cases, not the acknowledged one: {escalated}"
    );

    // An escalated case can still be resolved.
    let c = ops
        .case_verb(&ops.sup1, &alone_id, "resolve", &json!({"reason": "done"}))
        .await
        .ok(200);
    assert_eq!(c["state"], "resolved", "{c}");
}
