//! Concurrent bookings against a count limit: the single committer admits exactly as many as
//! the limit allows, for one member and for a floater family sharing its limit.

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    all_at_once, assert_moves, codes, lab, member, moves, policy, row, set, split, str_of, Move,
    Net,
};

const BURST: usize = 20;

#[tokio::test]
async fn twenty_concurrent_bookings_admit_exactly_the_annual_count() {
    let net = Net::build().await;
    net.policy("two", &policy(json!([lab(json!({"annual_count": 2}))])))
        .await;
    net.member("race", &member("two", json!({}))).await;

    let n = &net;
    let answers = all_at_once(BURST, |i| async move {
        n.book("race", &["CBC"], &format!("race-{i}")).await
    })
    .await;
    let (admitted, refused) = split(&answers);
    assert_eq!(
        (admitted.len(), refused.len()),
        (2, BURST - 2),
        "201s and 422s of {BURST} concurrent bookings"
    );
    for p in &refused {
        assert_eq!(codes(&p["reasons"]), set(&["count_limit_exhausted"]), "{p}");
    }
    let view = net.ents("race").await;
    let r = row(&view, "category:lab");
    assert_eq!(
        (r.count_used, r.count_reserved, r.count_remaining),
        (0, 2, Some(0)),
        "{view}"
    );
    let mut want: Vec<Move> = admitted
        .iter()
        .map(|b| {
            Move::new(
                &str_of(&b["id"]),
                "race",
                "category:lab",
                "reserve",
                1,
                40_000,
            )
        })
        .collect();
    assert_moves(&view, &want);
    assert_eq!(net.bookings_of("race").await.len(), 2);

    // Cancelling one gives back exactly one visit.
    let gone = str_of(&admitted[0]["id"]);
    net.cancel(&gone).await;
    want.push(Move::new(
        &gone,
        "race",
        "category:lab",
        "release",
        1,
        40_000,
    ));
    let view = net.ents("race").await;
    assert_eq!(
        row(&view, "category:lab").count_remaining,
        Some(1),
        "{view}"
    );
    assert_moves(&view, &want);

    let answers = all_at_once(BURST, |i| async move {
        n.book("race", &["CBC"], &format!("race-again-{i}")).await
    })
    .await;
    let (again, refused) = split(&answers);
    assert_eq!(
        (again.len(), refused.len()),
        (1, BURST - 1),
        "after one cancel, 201s and 422s of {BURST} concurrent bookings"
    );
    for p in &refused {
        assert_eq!(codes(&p["reasons"]), set(&["count_limit_exhausted"]), "{p}");
    }
    want.push(Move::new(
        &str_of(&again[0]["id"]),
        "race",
        "category:lab",
        "reserve",
        1,
        40_000,
    ));
    let view = net.ents("race").await;
    let r = row(&view, "category:lab");
    assert_eq!(
        (r.count_reserved, r.count_remaining),
        (2, Some(0)),
        "{view}"
    );
    assert_moves(&view, &want);
    let listed = net.bookings_of("race").await;
    let active: Vec<_> = listed
        .iter()
        .filter(|b| b["state"] == "pending_provider")
        .collect();
    assert_eq!((listed.len(), active.len()), (3, 2), "{listed:?}");
}

#[tokio::test]
async fn a_floater_family_shares_one_count() {
    let net = Net::build().await;
    let mut floater = policy(json!([lab(json!({"annual_count": 2}))]));
    floater["floater"] = json!(true);
    net.policy("fam-pol", &floater).await;
    net.member("fa", &member("fam-pol", json!({"family_id": "fam1"})))
        .await;
    net.member(
        "fb",
        &member(
            "fam-pol",
            json!({"family_id": "fam1", "relationship": "spouse"}),
        ),
    )
    .await;
    // Same policy, no family_id: a family of their own.
    net.member("fc", &member("fam-pol", json!({}))).await;

    let n = &net;
    let answers = all_at_once(BURST, |i| async move {
        let who = if i % 2 == 0 { "fa" } else { "fb" };
        n.book(who, &["CBC"], &format!("fam-{i}")).await
    })
    .await;
    let (admitted, refused) = split(&answers);
    assert_eq!(
        (admitted.len(), refused.len()),
        (2, BURST - 2),
        "201s and 422s of {BURST} concurrent bookings by a family of two"
    );
    for p in &refused {
        assert_eq!(codes(&p["reasons"]), set(&["count_limit_exhausted"]), "{p}");
    }
    let want: Vec<Move> = admitted
        .iter()
        .map(|b| {
            Move::new(
                &str_of(&b["id"]),
                &str_of(&b["member_id"]),
                "category:lab",
                "reserve",
                1,
                40_000,
            )
        })
        .collect();
    let va = net.ents("fa").await;
    let vb = net.ents("fb").await;
    for v in [&va, &vb] {
        assert_eq!(v["floater"], true, "{v}");
        assert_eq!(v["holder"], "fam1", "{v}");
        let r = row(v, "category:lab");
        assert_eq!((r.count_reserved, r.count_remaining), (2, Some(0)), "{v}");
        assert_moves(v, &want);
    }
    assert_eq!(va["benefits"], vb["benefits"]);
    // Whoever booked, the other is now refused too.
    for who in ["fa", "fb"] {
        let d = net.dry_run(who, &["CBC"]).await;
        super::assert_dry_ineligible(&d, &["count_limit_exhausted"]);
    }
    // The member outside the family is untouched.
    let vc = net.ents("fc").await;
    assert_eq!(vc["holder"], "fc", "{vc}");
    assert!(moves(&vc).is_empty(), "{vc}");
    let mut fc_ids = BTreeSet::new();
    for i in 0..2 {
        let b = net.book_ok("fc", &["CBC"], &format!("fc-{i}")).await;
        fc_ids.insert(str_of(&b["id"]));
    }
    super::assert_ineligible(
        &net.book("fc", &["CBC"], "fc-3").await,
        &["count_limit_exhausted"],
    );
    let vc = net.ents("fc").await;
    assert_eq!(row(&vc, "category:lab").count_reserved, 2, "{vc}");
    let listed: BTreeSet<String> = moves(&vc).into_iter().map(|m| m.booking_id).collect();
    assert_eq!(listed, fc_ids, "{vc}");

    // Cancelling one family booking frees the visit for either member.
    net.cancel(&str_of(&admitted[0]["id"])).await;
    let b = net.book_ok("fb", &["CBC"], "fam-after-cancel").await;
    assert_eq!(b["member_id"], "fb");
    let va = net.ents("fa").await;
    assert_eq!(row(&va, "category:lab").count_reserved, 2, "{va}");
}

#[tokio::test]
async fn one_idempotency_key_sent_ten_times_at_once_reserves_once() {
    let net = Net::build().await;
    net.policy("two", &policy(json!([lab(json!({"annual_count": 2}))])))
        .await;
    net.member("idem", &member("two", json!({}))).await;
    let body = super::booking("idem", &["CBC"], "idem-once");
    let (n, body) = (&net, &body);
    let answers = all_at_once(10, |_| async move {
        n.app.create_booking_idem(&n.key, "idem-key-1", body).await
    })
    .await;
    let ids: BTreeSet<String> = answers.iter().map(|r| str_of(&r.ok(201)["id"])).collect();
    assert_eq!(ids.len(), 1, "one key, several bookings: {ids:?}");
    let id = ids.into_iter().next().unwrap_or_default();
    let view = net.ents("idem").await;
    assert_moves(
        &view,
        &[Move::new(&id, "idem", "category:lab", "reserve", 1, 40_000)],
    );
    assert_eq!(
        row(&view, "category:lab").count_remaining,
        Some(1),
        "{view}"
    );
    assert_eq!(net.bookings_of("idem").await.len(), 1);
}
