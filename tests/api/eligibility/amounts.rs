//! Pricing: gross is the routed provider's rates; per benefit, covered =
//! min(floor(gross × (100 − copay) / 100), per-visit cap, what is left of the limit) and the
//! copay takes the rest. The booking view and the dry run agree.

use serde_json::{json, Value};

use super::{
    amounts, dry_amounts, int, lab, member, moves, policy, row, str_of, Move, Net, CBC, GOLD_LAB,
    LIPID, TSH, YEAR,
};

/// Books `services` for `member` after a dry run, asserts both give `want`
/// (gross, covered, copay) and the same provider, and that a GET of the booking agrees.
async fn priced(net: &Net, member: &str, services: &[&str], want: (i64, i64, i64)) -> Value {
    let d = net.dry_run(member, services).await;
    assert_eq!(d["eligible"], true, "{d}");
    assert_eq!(
        dry_amounts(&d),
        want,
        "dry run (gross, covered, copay): {d}"
    );
    assert_eq!(d["provider_id"], GOLD_LAB, "{d}");
    assert_eq!(
        d["policy_year"],
        json!({"from": YEAR.0, "to": YEAR.1}),
        "{d}"
    );
    let b = net
        .book_ok(
            member,
            services,
            &format!("{member}-{}", services.join("-")),
        )
        .await;
    assert_eq!(amounts(&b), want, "booking (gross, covered, copay): {b}");
    assert_eq!(b["provider_id"], d["provider_id"], "{b}");
    let got = net
        .app
        .get_booking(&net.key, &str_of(&b["id"]))
        .await
        .ok(200);
    assert_eq!(amounts(&got), want, "GET booking: {got}");
    b
}

#[tokio::test]
async fn copay_of_twenty_percent_on_forty_thousand() {
    let net = Net::build().await;
    net.policy("co20", &policy(json!([lab(json!({"copay_percent": 20}))])))
        .await;
    net.member("p-1", &member("co20", json!({}))).await;
    let d = net.dry_run("p-1", &["CBC"]).await;
    assert_eq!(
        d["lines"],
        json!([{"benefit": "category:lab", "gross_paise": CBC, "covered_paise": 32_000, "copay_paise": 8_000}]),
        "{d}"
    );
    let b = priced(&net, "p-1", &["CBC"], (CBC, 32_000, 8_000)).await;
    let view = net.ents("p-1").await;
    assert_eq!(row(&view, "category:lab").amount_reserved, 32_000, "{view}");
    super::assert_moves(
        &view,
        &[Move::new(
            &str_of(&b["id"]),
            "p-1",
            "category:lab",
            "reserve",
            1,
            32_000,
        )],
    );
    // The copay is the member's, whatever the limit says: 100 % copay covers nothing.
    net.policy(
        "co100",
        &policy(json!([lab(json!({"copay_percent": 100}))])),
    )
    .await;
    net.member("p-2", &member("co100", json!({}))).await;
    priced(&net, "p-2", &["CBC"], (CBC, 0, CBC)).await;
}

#[tokio::test]
async fn the_per_visit_cap_limits_each_booking() {
    let net = Net::build().await;
    net.policy(
        "capped",
        &policy(json!([lab(
            json!({"copay_percent": 20, "per_visit_cap_paise": 25_000})
        )])),
    )
    .await;
    net.member("p-cap", &member("capped", json!({}))).await;
    // 32,000 after copay, capped at 25,000.
    priced(&net, "p-cap", &["CBC"], (CBC, 25_000, 15_000)).await;
    // Both lab tests fall under one benefit: 80,000 after copay, capped at 25,000 per visit.
    priced(
        &net,
        "p-cap",
        &["CBC", "LIPID"],
        (CBC + LIPID, 25_000, CBC + LIPID - 25_000),
    )
    .await;
    // Under the cap, the cap changes nothing: TSH 12,345 → floor(9,876) covered.
    priced(&net, "p-cap", &["TSH"], (TSH, 9_876, TSH - 9_876)).await;
    let view = net.ents("p-cap").await;
    let r = row(&view, "category:lab");
    assert_eq!(
        (r.count_reserved, r.amount_reserved),
        (3, 25_000 + 25_000 + 9_876),
        "{view}"
    );
}

#[tokio::test]
async fn a_nearly_used_limit_covers_only_what_is_left() {
    let net = Net::build().await;
    net.policy(
        "limit42",
        &policy(json!([lab(
            json!({"copay_percent": 20, "annual_limit_paise": 42_000})
        )])),
    )
    .await;
    net.member("p-lim", &member("limit42", json!({}))).await;
    priced(&net, "p-lim", &["CBC"], (CBC, 32_000, 8_000)).await;
    let d = net.dry_run("p-lim", &["CBC"]).await;
    assert_eq!(
        d["remaining"]["category:lab"]["amount_remaining_paise"], 10_000,
        "{d}"
    );
    // 10,000 left: covered 10,000, the copay takes the other 30,000.
    priced(&net, "p-lim", &["CBC"], (CBC, 10_000, 30_000)).await;
    let view = net.ents("p-lim").await;
    let r = row(&view, "category:lab");
    assert_eq!(
        (r.amount_reserved, r.amount_remaining),
        (42_000, Some(0)),
        "{view}"
    );
}

#[tokio::test]
async fn a_service_benefit_wins_over_the_category_benefit() {
    let net = Net::build().await;
    net.policy(
        "split",
        &policy(json!([
            lab(json!({"copay_percent": 20, "annual_count": 10})),
            {"service_code": "CBC", "copay_percent": 0, "annual_count": 5},
        ])),
    )
    .await;
    net.member("p-split", &member("split", json!({}))).await;
    // CBC under service:CBC (no copay), LIPID under category:lab (20 %).
    let covered = CBC + LIPID * 80 / 100;
    let d = net.dry_run("p-split", &["CBC", "LIPID"]).await;
    let mut lines: Vec<(String, i64, i64, i64)> = d["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("dry run without lines: {d}"))
        .iter()
        .map(|l| {
            (
                str_of(&l["benefit"]),
                int(&l["gross_paise"]),
                int(&l["covered_paise"]),
                int(&l["copay_paise"]),
            )
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("category:lab".to_string(), LIPID, 48_000, 12_000),
            ("service:CBC".to_string(), CBC, CBC, 0),
        ],
        "{d}"
    );
    let b = priced(
        &net,
        "p-split",
        &["CBC", "LIPID"],
        (CBC + LIPID, covered, CBC + LIPID - covered),
    )
    .await;
    let view = net.ents("p-split").await;
    let id = str_of(&b["id"]);
    super::assert_moves(
        &view,
        &[
            Move::new(&id, "p-split", "service:CBC", "reserve", 1, CBC),
            Move::new(&id, "p-split", "category:lab", "reserve", 1, 48_000),
        ],
    );
    assert_eq!(row(&view, "service:CBC").count_remaining, Some(4));
    assert_eq!(row(&view, "category:lab").count_remaining, Some(9));
    assert_eq!(moves(&view).len(), 2);
}

#[tokio::test]
async fn fractions_of_a_paisa_go_to_the_copay() {
    let net = Net::build().await;
    net.policy("co15", &policy(json!([lab(json!({"copay_percent": 15}))])))
        .await;
    net.member("p-frac", &member("co15", json!({}))).await;
    // 12,345 × 85 / 100 = 10,493.25 → 10,493 covered, 1,852 copay.
    priced(&net, "p-frac", &["TSH"], (TSH, 10_493, 1_852)).await;
}
