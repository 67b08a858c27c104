//! Ranking: score = Σ weight × component (distance, quality, load, price), best first, ties
//! by provider id; the weights come from `[routing] weights`.

use serde_json::{json, Value};

use super::{
    blr_booking, booking, candidate, candidate_ids, close, km, lab, mentioned, num, routing_items,
    Net, BLR, MUM, SLOT,
};
use crate::harness::{str_of, TestApp};

/// Bengaluru labs at increasing distance from [`BLR`] (all list 560001, radius 15 km).
const BLR_LABS: [(&str, f64, f64); 3] = [
    ("rk-near", 12.9760, 77.5990),
    ("rk-mid", 12.9900, 77.6100),
    ("rk-far", 13.0200, 77.6400),
];
/// Mumbai labs at increasing distance from [`MUM`] (both list 400001).
const MUM_LABS: [(&str, f64, f64); 2] = [
    ("mum-near", 18.9350, 72.8350),
    ("mum-far", 18.9700, 72.8500),
];

const DEFAULT_WEIGHTS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];
const QUALITY_WEIGHTS: [f64; 4] = [0.1, 0.8, 0.05, 0.05];
const QUALITY_CONFIG: &str =
    "[routing]\nweights = { distance = 0.1, quality = 0.8, load = 0.05, price = 0.05 }\n";

/// Checks every candidate of a decision against the documented formula: the distance is the
/// great-circle distance from `here` to the provider, the distance component is
/// 1 / (1 + km / 5), the score is Σ weight × component, and the list is best first.
#[track_caller]
fn check_formula(routing: &Value, here: (f64, f64), at: &[(&str, f64, f64)], w: [f64; 4]) {
    let list = routing["candidates"].as_array().expect("candidates");
    for c in list {
        let id = str_of(&c["provider_id"]);
        let what = format!("candidate {id} in {routing}");
        let &(_, lat, lon) = at
            .iter()
            .find(|(p, ..)| *p == id)
            .unwrap_or_else(|| panic!("unexpected candidate {id}: {routing}"));
        let d = num(&c["distance_km"]);
        close(
            d,
            km(here, (lat, lon)),
            0.01,
            &format!("distance_km of {what}"),
        );
        let comp = &c["components"];
        close(
            num(&comp["distance"]),
            1.0 / (1.0 + d / 5.0),
            0.002,
            &format!("distance component of {what}"),
        );
        let expected = w[0] * num(&comp["distance"])
            + w[1] * num(&comp["quality"])
            + w[2] * num(&comp["load"])
            + w[3] * num(&comp["price"]);
        close(
            num(&c["score"]),
            expected,
            0.003,
            &format!("score of {what}"),
        );
    }
    // Wire scores are rounded to 3 decimals, so only "not increasing" is checked here; the
    // tie-break by id is checked where the scores are exactly equal.
    for pair in list.windows(2) {
        assert!(
            num(&pair[0]["score"]) >= num(&pair[1]["score"]),
            "candidates not best first: {routing}"
        );
    }
}

async fn add_labs(app: &TestApp, net: &mut Net, labs: &[(&str, f64, f64)], pincode: &str) {
    for &(id, lat, lon) in labs {
        let mut body = lab(lat, lon, pincode);
        body["radius_km"] = json!(15);
        net.add(app, id, &body).await;
    }
}

#[tokio::test]
async fn nearest_of_otherwise_equal_labs_wins_in_each_city() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    add_labs(&app, &mut net, &BLR_LABS, "560001").await;
    add_labs(&app, &mut net, &MUM_LABS, "400001").await;

    // Bengaluru.
    let b = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "rank-blr"))
        .await
        .ok(201);
    let id = str_of(&b["id"]);
    assert_eq!(b["provider_id"], "rk-near", "{}", b["routing"]);
    assert_eq!(b["routing"]["provider_id"], "rk-near", "{}", b["routing"]);
    assert_eq!(b["routing"]["attempt"], 1, "{}", b["routing"]);
    assert_eq!(
        candidate_ids(&b["routing"]),
        ["rk-near", "rk-mid", "rk-far"],
        "equal quality, price and load: nearest first; {}",
        b["routing"]
    );
    for id in ["rk-near", "rk-mid", "rk-far"] {
        let c = candidate(&b["routing"], id);
        for k in ["quality", "load", "price"] {
            close(
                num(&c["components"][k]),
                1.0,
                0.0005,
                &format!("{k} of {id}"),
            );
        }
    }
    check_formula(&b["routing"], (BLR.0, BLR.1), &BLR_LABS, DEFAULT_WEIGHTS);
    assert!(
        mentioned(&b["routing"])
            .iter()
            .all(|p| p.starts_with("rk-")),
        "a Mumbai lab is considered for a Bengaluru address: {}",
        b["routing"]
    );
    assert_eq!(b["amounts"]["gross_paise"], 100_000, "{b}");

    // The stored booking and the routing history say the same.
    let got = app.get_booking(net.pk(), &id).await.ok(200);
    assert_eq!(
        got["routing"], b["routing"],
        "GET differs from the 201 body"
    );
    let items = routing_items(&app, net.pk(), &id).await;
    assert_eq!(items.len(), 1, "one routing attempt: {items:?}");
    assert_eq!(items[0]["attempt"], 1);
    assert_eq!(items[0]["provider_id"], "rk-near");
    assert_eq!(candidate_ids(&items[0]), ["rk-near", "rk-mid", "rk-far"]);

    // Mumbai.
    let mumbai = net.partner.mumbai_member.clone();
    let body = booking(&mumbai, &["CBC"], SLOT, MUM, "rank-mum");
    let m = app.create_booking(net.pk(), &body).await.ok(201);
    assert_eq!(m["provider_id"], "mum-near", "{}", m["routing"]);
    assert_eq!(candidate_ids(&m["routing"]), ["mum-near", "mum-far"]);
    check_formula(&m["routing"], (MUM.0, MUM.1), &MUM_LABS, DEFAULT_WEIGHTS);
    assert!(
        mentioned(&m["routing"])
            .iter()
            .all(|p| p.starts_with("mum-")),
        "a Bengaluru lab is considered for a Mumbai address: {}",
        m["routing"]
    );
    assert_eq!(m["amounts"]["gross_paise"], 40_000, "{m}");
}

#[tokio::test]
async fn equal_scores_break_ties_by_provider_id() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    // Registered in reverse order, at the same spot, on the same terms.
    let twins = [
        ("rk-c", 12.9750, 77.6000),
        ("rk-b", 12.9750, 77.6000),
        ("rk-a", 12.9750, 77.6000),
    ];
    add_labs(&app, &mut net, &twins, "560001").await;
    for n in 0..3 {
        let b = app
            .create_booking(net.pk(), &blr_booking(net.member(n), &format!("tie-{n}")))
            .await
            .ok(201);
        let ids = candidate_ids(&b["routing"]);
        check_formula(&b["routing"], (BLR.0, BLR.1), &twins, DEFAULT_WEIGHTS);
        // Each booking lowers the chosen lab's load a little, so the next goes to the next id.
        let expected = ["rk-a", "rk-b", "rk-c"][n];
        assert_eq!(b["provider_id"], expected, "booking {n}: {}", b["routing"]);
        if n == 0 {
            assert_eq!(ids, ["rk-a", "rk-b", "rk-c"], "{}", b["routing"]);
            let scores: Vec<f64> = b["routing"]["candidates"]
                .as_array()
                .expect("candidates")
                .iter()
                .map(|c| num(&c["score"]))
                .collect();
            assert!(
                scores.windows(2).all(|s| s[0] == s[1]),
                "identical labs with different scores: {}",
                b["routing"]
            );
        }
    }
}

/// rk-near (quality 3) is 0.7 km away, rk-far (quality 5) 7.3 km.
async fn quality_network(app: &TestApp) -> Net {
    let mut net = Net::build(app).await;
    let labs = [BLR_LABS[0], BLR_LABS[2]];
    add_labs(app, &mut net, &labs, "560001").await;
    for (id, q) in [("rk-near", 3.0), ("rk-far", 5.0)] {
        let &(_, lat, lon) = labs.iter().find(|l| l.0 == id).expect("lab");
        let mut body = lab(lat, lon, "560001");
        body["radius_km"] = json!(15);
        body["quality_score"] = json!(q);
        app.put_provider(id, &body).await.ok(200);
    }
    net
}

#[tokio::test]
async fn quality_weighted_config_lets_a_better_farther_lab_win() {
    let labs = [BLR_LABS[0], BLR_LABS[2]];

    // Default weights (distance 0.4): the nearer, lower-quality lab wins.
    let app = TestApp::spawn().await;
    let net = quality_network(&app).await;
    let b = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "w-default"))
        .await
        .ok(201);
    assert_eq!(b["provider_id"], "rk-near", "{}", b["routing"]);
    assert_eq!(candidate_ids(&b["routing"]), ["rk-near", "rk-far"]);
    close(
        num(&candidate(&b["routing"], "rk-near")["components"]["quality"]),
        0.6,
        0.0005,
        "quality component = quality / best quality",
    );
    check_formula(&b["routing"], (BLR.0, BLR.1), &labs, DEFAULT_WEIGHTS);
    drop(app);

    // Quality 0.8: the farther, better lab wins.
    let app = TestApp::spawn_with(QUALITY_CONFIG).await;
    let net = quality_network(&app).await;
    let b = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "w-quality"))
        .await
        .ok(201);
    assert_eq!(
        b["provider_id"], "rk-far",
        "with quality weighted 0.8 the quality-5 lab should win: {}",
        b["routing"]
    );
    assert_eq!(candidate_ids(&b["routing"]), ["rk-far", "rk-near"]);
    check_formula(&b["routing"], (BLR.0, BLR.1), &labs, QUALITY_WEIGHTS);
}
