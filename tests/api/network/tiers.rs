//! An inactive provider is never chosen, nor is a provider of a tier the policy's
//! `network_tiers` leaves out, however good it is; with nobody else left the booking is
//! refused with `network_not_covered`.

use serde_json::json;

use super::{blr_booking, candidate_ids, excluded_map, lab, reason_codes, Net, BLR};
use crate::harness::{member_body, policy_body, TestApp};

#[tokio::test]
async fn inactive_and_out_of_tier_providers_are_never_chosen() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let (lat, lon, pin) = BLR;
    // The two best labs on every measure: at the door, top quality, cheapest.
    let best = |b: &mut serde_json::Value| {
        b["quality_score"] = json!(5.0);
        b["services"] = json!({"CBC": {"rate_paise": 100}, "LIPID": {"rate_paise": 100}});
    };
    let mut inactive = lab(lat, lon, pin);
    best(&mut inactive);
    inactive["active"] = json!(false);
    net.add(&app, "tr-inactive", &inactive).await;
    let mut silver = lab(lat, lon, pin);
    best(&mut silver);
    silver["network_tier"] = json!("silver");
    net.add(&app, "tr-silver", &silver).await;
    // An ordinary gold lab 2.6 km away.
    net.add(&app, "tr-gold", &lab(12.9900, 77.6100, pin)).await;

    // pa-gold allows only the gold tier.
    let policy = app
        .get(
            &format!("/v1/policies/{}", net.partner.policy_id),
            Some(net.pk()),
        )
        .await
        .ok(200);
    assert_eq!(policy["network_tiers"], json!(["gold"]), "{policy}");

    for n in 0..6 {
        let b = app
            .create_booking(
                net.pk(),
                &blr_booking(net.member(n % 4), &format!("tr-{n}")),
            )
            .await
            .ok(201);
        let r = &b["routing"];
        assert_eq!(b["provider_id"], "tr-gold", "booking {n}: {r}");
        assert_eq!(candidate_ids(r), ["tr-gold"], "booking {n}: {r}");
        let excl = excluded_map(r);
        assert_eq!(
            excl.get("tr-inactive").map(String::as_str),
            Some("inactive"),
            "{r}"
        );
        assert_eq!(
            excl.get("tr-silver").map(String::as_str),
            Some("tier_not_in_network"),
            "{r}"
        );
    }

    // With tr-gold switched off, nothing is left for a gold-only policy: refused, not routed
    // to silver or to the inactive lab.
    let mut off = lab(12.9900, 77.6100, pin);
    off["active"] = json!(false);
    app.put_provider("tr-gold", &off).await.ok(200);
    let r = app
        .create_booking(net.pk(), &blr_booking(net.member(0), "tr-none"))
        .await;
    assert_eq!(reason_codes(&r), ["network_not_covered"], "{}", r.text());

    // A policy that allows silver gets the silver lab (so the tier rule was what kept it out).
    let mut both = policy_body("2035-12-31");
    both["network_tiers"] = json!(["gold", "silver"]);
    app.put_policy(net.pk(), "pa-any-tier", &both).await.ok(201);
    app.put_member(
        net.pk(),
        "pa-any",
        &member_body("pa-any-tier", "560001", 50),
    )
    .await
    .ok(201);
    let b = app
        .create_booking(net.pk(), &blr_booking("pa-any", "tr-any"))
        .await
        .ok(201);
    assert_eq!(b["provider_id"], "tr-silver", "{}", b["routing"]);
    assert_eq!(
        excluded_map(&b["routing"])
            .get("tr-inactive")
            .map(String::as_str),
        Some("inactive"),
        "{}",
        b["routing"]
    );
    // The gold-only member is still refused.
    let r = app
        .create_booking(net.pk(), &blr_booking(net.member(1), "tr-none-2"))
        .await;
    assert_eq!(reason_codes(&r), ["network_not_covered"], "{}", r.text());

    // Re-activating tr-inactive (the best lab) makes it the choice at once.
    let mut on = lab(lat, lon, pin);
    best(&mut on);
    app.put_provider("tr-inactive", &on).await.ok(200);
    let b = app
        .create_booking(net.pk(), &blr_booking(net.member(2), "tr-back"))
        .await
        .ok(201);
    assert_eq!(b["provider_id"], "tr-inactive", "{}", b["routing"]);
}
