//! Every eligibility reason code, from a member built to hit it (dry run and booking agree),
//! several at once, and the boundaries of the rules on the slot's India date.

use serde_json::json;

use super::{booking, booking_at, elsewhere, lab, member, policy, row, Net, YEAR};

/// 2029-12-31 23:30 India time (UTC+05:30) for one hour.
const LAST_INDIA_HOUR_2029: (&str, &str) = ("2029-12-31T18:00:00Z", "2029-12-31T18:29:00Z");
/// 2030-01-01 00:00 India time, still 2029-12-31 in UTC.
const FIRST_INDIA_HOUR_2030: (&str, &str) = ("2029-12-31T18:30:00Z", "2029-12-31T19:30:00Z");
/// 2030-01-01 22:30 India time.
const LATE_2030_01_01: (&str, &str) = ("2030-01-01T17:00:00Z", "2030-01-01T18:00:00Z");
/// 2030-01-02 00:30 India time, still 2030-01-01 in UTC.
const EARLY_2030_01_02: (&str, &str) = ("2030-01-01T19:00:00Z", "2030-01-01T20:00:00Z");

#[tokio::test]
async fn member_not_found_for_unknown_and_other_partners_members() {
    let net = Net::build().await;
    net.assert_refused(
        &booking("nobody", &["CBC"], "r-unknown"),
        &["member_not_found"],
    )
    .await;

    // Partner px's member is unknown to partner pe.
    net.app
        .put_policy(&net.other_key, "px-pol", &policy(json!([lab(json!({}))])))
        .await
        .ok(201);
    net.app
        .put_member(&net.other_key, "px-m", &member("px-pol", json!({})))
        .await
        .ok(201);
    net.app
        .create_booking(&net.other_key, &booking("px-m", &["CBC"], "px-own"))
        .await
        .ok(201);
    net.assert_refused(
        &booking("px-m", &["CBC"], "r-foreign"),
        &["member_not_found"],
    )
    .await;
}

#[tokio::test]
async fn policy_inactive_outside_its_validity_on_the_india_date() {
    let net = Net::build().await;
    let mut ended = policy(json!([lab(json!({}))]));
    ended["valid_to"] = json!("2029-12-31");
    net.policy("ended", &ended).await;
    net.member("m-ended", &member("ended", json!({}))).await;
    let mut future = policy(json!([lab(json!({}))]));
    future["valid_from"] = json!("2030-06-01");
    future["valid_to"] = json!("2032-05-31");
    net.policy("future", &future).await;
    // Enrolled ahead of the start, so no waiting period is involved.
    net.member(
        "m-future",
        &member("future", json!({"enrolled_on": "2029-12-01"})),
    )
    .await;

    net.assert_refused(
        &booking("m-ended", &["CBC"], "r-ended"),
        &["policy_inactive"],
    )
    .await;
    net.assert_refused(
        &booking("m-future", &["CBC"], "r-future"),
        &["policy_inactive"],
    )
    .await;
    // 00:00 India time on 2030-01-01 is after the policy although it is 2029-12-31 in UTC ...
    let (s, e) = FIRST_INDIA_HOUR_2030;
    net.assert_refused(&booking_at("m-ended", &["CBC"], s, e), &["policy_inactive"])
        .await;
    // ... and 23:30 India time on 2029-12-31 is its last day.
    let (s, e) = LAST_INDIA_HOUR_2029;
    net.assert_admitted(&booking_at("m-ended", &["CBC"], s, e))
        .await;
}

#[tokio::test]
async fn waiting_period_runs_from_enrolment_to_the_slot_day() {
    let net = Net::build().await;
    net.policy(
        "wait30",
        &policy(json!([lab(json!({"waiting_period_days": 30}))])),
    )
    .await;
    // Ready on 2030-01-14: too late for the 2030-01-01 slot.
    net.member(
        "w-late",
        &member("wait30", json!({"enrolled_on": "2029-12-15"})),
    )
    .await;
    net.assert_refused(&booking("w-late", &["CBC"], "r-late"), &["waiting_period"])
        .await;
    // Ready on exactly the slot day.
    net.member(
        "w-edge",
        &member("wait30", json!({"enrolled_on": "2029-12-02"})),
    )
    .await;
    net.assert_admitted(&booking("w-edge", &["CBC"], "r-edge"))
        .await;
    // Ready on 2030-01-02 (India): 22:30 on the 1st is too early, 00:30 on the 2nd is fine,
    // although both are 2030-01-01 in UTC.
    net.member(
        "w-ist",
        &member("wait30", json!({"enrolled_on": "2029-12-03"})),
    )
    .await;
    let (s, e) = LATE_2030_01_01;
    net.assert_refused(&booking_at("w-ist", &["CBC"], s, e), &["waiting_period"])
        .await;
    let (s, e) = EARLY_2030_01_02;
    net.assert_admitted(&booking_at("w-ist", &["CBC"], s, e))
        .await;

    // The waiting period is per benefit: CBC's own benefit has none, the lab one has 90 days.
    net.policy(
        "wait-split",
        &policy(json!([
            {"service_code": "CBC"},
            lab(json!({"waiting_period_days": 90})),
        ])),
    )
    .await;
    net.member(
        "w-split",
        &member("wait-split", json!({"enrolled_on": "2029-12-15"})),
    )
    .await;
    net.assert_admitted(&booking("w-split", &["CBC"], "r-split-cbc"))
        .await;
    net.assert_refused(
        &booking("w-split", &["CBC", "LIPID"], "r-split-both"),
        &["waiting_period"],
    )
    .await;
}

#[tokio::test]
async fn relationship_not_covered() {
    let net = Net::build().await;
    net.policy(
        "couple",
        &policy(json!([lab(json!({"relationships": ["self", "spouse"]}))])),
    )
    .await;
    net.member(
        "r-parent",
        &member("couple", json!({"relationship": "parent"})),
    )
    .await;
    net.member(
        "r-child",
        &member(
            "couple",
            json!({"relationship": "child", "dob": "2015-03-01"}),
        ),
    )
    .await;
    net.member(
        "r-spouse",
        &member("couple", json!({"relationship": "spouse"})),
    )
    .await;
    net.assert_refused(
        &booking("r-parent", &["CBC"], "r-parent"),
        &["relationship_not_covered"],
    )
    .await;
    net.assert_refused(
        &booking("r-child", &["CBC"], "r-child"),
        &["relationship_not_covered"],
    )
    .await;
    net.assert_admitted(&booking("r-spouse", &["CBC"], "r-spouse"))
        .await;

    // Without `relationships` a benefit covers all four.
    net.policy("family", &policy(json!([lab(json!({}))]))).await;
    for rel in ["self", "spouse", "child", "parent"] {
        let id = format!("f-{rel}");
        net.member(&id, &member("family", json!({"relationship": rel})))
            .await;
        net.assert_admitted(&booking(&id, &["CBC"], &id)).await;
    }
}

#[tokio::test]
async fn age_not_covered_uses_the_age_on_the_slot_day() {
    let net = Net::build().await;
    net.policy(
        "adults",
        &policy(json!([lab(json!({"min_age": 18, "max_age": 59}))])),
    )
    .await;
    let cases = [
        ("a-60", "1970-01-01", false), // 60 on 2030-01-01
        ("a-59", "1970-01-02", true),  // 60 only tomorrow
        ("a-17", "2012-01-02", false), // 18 only tomorrow
        ("a-18", "2012-01-01", true),  // 18 today
        ("a-old", "1940-05-05", false),
        ("a-baby", "2029-06-01", false),
    ];
    for (id, dob, ok) in cases {
        net.member(id, &member("adults", json!({"dob": dob}))).await;
        let body = booking(id, &["CBC"], id);
        if ok {
            net.assert_admitted(&body).await;
        } else {
            net.assert_refused(&body, &["age_not_covered"]).await;
        }
    }
    // At 00:30 India time on 2030-01-02 (still the 1st in UTC) a-59 is already 60.
    let (s, e) = EARLY_2030_01_02;
    net.assert_refused(&booking_at("a-59", &["CBC"], s, e), &["age_not_covered"])
        .await;
}

#[tokio::test]
async fn service_not_covered_by_code_or_category() {
    let net = Net::build().await;
    net.policy("cbc-only", &policy(json!([{"service_code": "CBC"}])))
        .await;
    net.member("s-cbc", &member("cbc-only", json!({}))).await;
    net.assert_refused(
        &booking("s-cbc", &["LIPID"], "s-lipid"),
        &["service_not_covered"],
    )
    .await;
    net.assert_refused(
        &booking("s-cbc", &["CBC", "LIPID"], "s-both"),
        &["service_not_covered"],
    )
    .await;
    net.assert_admitted(&booking("s-cbc", &["CBC"], "s-cbc-ok"))
        .await;

    net.policy(
        "consult-only",
        &policy(json!([{"category": "consultation"}])),
    )
    .await;
    net.member("s-consult", &member("consult-only", json!({})))
        .await;
    net.assert_refused(
        &booking("s-consult", &["CBC"], "s-lab"),
        &["service_not_covered"],
    )
    .await;
    net.assert_admitted(&booking("s-consult", &["CONSULT"], "s-consult-ok"))
        .await;
}

#[tokio::test]
async fn count_limit_exhausted_after_the_last_visit() {
    let net = Net::build().await;
    net.policy(
        "one-visit",
        &policy(json!([lab(json!({"annual_count": 1}))])),
    )
    .await;
    net.member("c-1", &member("one-visit", json!({}))).await;
    net.assert_admitted(&booking("c-1", &["CBC"], "c-first"))
        .await;
    net.assert_refused(
        &booking("c-1", &["CBC"], "c-second"),
        &["count_limit_exhausted"],
    )
    .await;
    // Another member of the same (non-floater) policy has their own visit.
    net.member("c-2", &member("one-visit", json!({}))).await;
    net.assert_admitted(&booking("c-2", &["CBC"], "c-other"))
        .await;
}

#[tokio::test]
async fn amount_limit_exhausted_only_when_nothing_is_left() {
    let net = Net::build().await;
    // 20 % copay: a CBC (40,000) takes 32,000 of the 42,000.
    net.policy(
        "small-limit",
        &policy(json!([lab(
            json!({"copay_percent": 20, "annual_limit_paise": 42_000})
        )])),
    )
    .await;
    net.member("l-1", &member("small-limit", json!({}))).await;
    net.assert_admitted(&booking("l-1", &["CBC"], "l-first"))
        .await;
    // 10,000 left: still eligible.
    net.assert_admitted(&booking("l-1", &["CBC"], "l-second"))
        .await;
    assert_eq!(
        row(&net.ents("l-1").await, "category:lab").amount_remaining,
        Some(0)
    );
    net.assert_refused(
        &booking("l-1", &["CBC"], "l-third"),
        &["amount_limit_exhausted"],
    )
    .await;
}

#[tokio::test]
async fn network_not_covered_by_tier_area_or_services() {
    let net = Net::build().await;
    let mut platinum = policy(json!([lab(json!({}))]));
    platinum["network_tiers"] = json!(["platinum"]);
    net.policy("platinum", &platinum).await;
    net.member("n-plat", &member("platinum", json!({}))).await;
    net.assert_refused(
        &booking("n-plat", &["CBC"], "n-plat"),
        &["network_not_covered"],
    )
    .await;

    // 560002 is served only by the silver lab: not in a gold policy's network ...
    net.policy("gold", &policy(json!([lab(json!({}))]))).await;
    net.member("n-gold", &member("gold", json!({"pincode": "560002"})))
        .await;
    let mut there = booking("n-gold", &["CBC"], "n-there");
    there["address"] = elsewhere();
    net.assert_refused(&there, &["network_not_covered"]).await;
    // ... but in a silver one's.
    let mut silver = policy(json!([lab(json!({}))]));
    silver["network_tiers"] = json!(["gold", "silver"]);
    net.policy("silver", &silver).await;
    net.member("n-silver", &member("silver", json!({"pincode": "560002"})))
        .await;
    let mut there = booking("n-silver", &["CBC"], "n-silver");
    there["address"] = elsewhere();
    let b = net.assert_admitted(&there).await;
    assert_eq!(b["provider_id"], super::SILVER_LAB, "{b}");

    // Nobody offers ECG, so CBC + ECG has no provider with every service.
    net.assert_refused(
        &booking("n-gold", &["CBC", "ECG"], "n-ecg"),
        &["network_not_covered"],
    )
    .await;
}

#[tokio::test]
async fn every_failing_rule_is_reported_at_once() {
    let net = Net::build().await;
    // Ended the day before the slot, platinum network only, a lab benefit with nothing in it
    // for self only, up to 60, after 30 days.
    let mut broken = policy(json!([lab(json!({
        "annual_count": 0,
        "annual_limit_paise": 0,
        "waiting_period_days": 30,
        "relationships": ["self"],
        "max_age": 60,
    }))]));
    broken["valid_from"] = json!("2024-01-01");
    broken["valid_to"] = json!("2029-12-31");
    broken["network_tiers"] = json!(["platinum"]);
    net.policy("broken", &broken).await;
    net.member(
        "x-all",
        &member(
            "broken",
            json!({"relationship": "parent", "dob": "1950-01-01", "enrolled_on": "2029-12-20"}),
        ),
    )
    .await;
    // CONSULT has no benefit at all.
    net.assert_refused(
        &booking("x-all", &["CBC", "CONSULT"], "x-all"),
        &[
            "policy_inactive",
            "waiting_period",
            "relationship_not_covered",
            "age_not_covered",
            "service_not_covered",
            "count_limit_exhausted",
            "amount_limit_exhausted",
            "network_not_covered",
        ],
    )
    .await;
}

#[tokio::test]
async fn used_up_limits_and_a_changed_member_are_reported_together() {
    let net = Net::build().await;
    net.policy(
        "pair",
        &policy(json!([lab(json!({
            "copay_percent": 20,
            "annual_count": 2,
            "annual_limit_paise": 64_000,
            "relationships": ["self", "spouse"],
            "max_age": 65,
        }))])),
    )
    .await;
    net.member("u-1", &member("pair", json!({}))).await;
    net.assert_admitted(&booking("u-1", &["CBC"], "u-a")).await;
    net.assert_admitted(&booking("u-1", &["CBC"], "u-b")).await;
    net.assert_refused(
        &booking("u-1", &["CBC"], "u-c"),
        &["count_limit_exhausted", "amount_limit_exhausted"],
    )
    .await;
    // The roster now says this is the holder's 80-year-old parent.
    net.member(
        "u-1",
        &member(
            "pair",
            json!({"relationship": "parent", "dob": "1950-01-01"}),
        ),
    )
    .await;
    net.assert_refused(
        &booking("u-1", &["CBC"], "u-d"),
        &[
            "relationship_not_covered",
            "age_not_covered",
            "count_limit_exhausted",
            "amount_limit_exhausted",
        ],
    )
    .await;
    let view = net.ents("u-1").await;
    let r = row(&view, "category:lab");
    assert_eq!(
        (r.count_reserved, r.amount_reserved),
        (2, 64_000),
        "refusals moved the ledger: {view}"
    );
    assert_eq!(super::moves(&view).len(), 2, "refusals left moves: {view}");
    assert_eq!(view["policy_year"], json!({"from": YEAR.0, "to": YEAR.1}));
}
