//! The entitlement ledger through a booking's life: reserve on admission, consume on
//! `completed` (the bill at the reserved coverage ratio, capped at the reservation, the rest
//! released), release on cancel, no-show and failure. After every step the entitlements view
//! adds up ([`super::assert_adds_up`], run by [`Net::ents`]) and lists exactly the moves made.
//! The dry run reserves nothing.

use serde_json::{json, Value};

use super::{
    all_at_once, assert_moves, dry_run_body, int, lab, member, moves, policy, row, str_of, Move,
    Net, Row, CBC, LIPID,
};

const LAB: &str = "category:lab";

/// 20 % copay (a CBC reserves 32,000), 10 visits, 200,000 paise.
fn ledger_policy() -> Value {
    policy(json!([lab(json!({
        "copay_percent": 20,
        "annual_count": 10,
        "annual_limit_paise": 200_000,
    }))]))
}

fn usage(count_used: i64, count_reserved: i64, amount_used: i64, amount_reserved: i64) -> Row {
    Row {
        count_used,
        count_reserved,
        count_remaining: Some(10 - count_used - count_reserved),
        amount_used,
        amount_reserved,
        amount_remaining: Some(200_000 - amount_used - amount_reserved),
    }
}

/// The view of `member` has `want` on the lab benefit and exactly the moves `moves`.
async fn check(net: &Net, member: &str, step: &str, want: Row, moves: &[Move]) -> Value {
    let view = net.ents(member).await;
    assert_eq!(row(&view, LAB), want, "after {step}: {view}");
    assert_moves(&view, moves);
    view
}

#[tokio::test]
async fn completion_consumes_the_bill_and_releases_the_rest() {
    let net = Net::build().await;
    net.policy("led", &ledger_policy()).await;
    net.member("led-1", &member("led", json!({}))).await;
    let mv = |b: &str, kind: &str, count: i64, amount: i64| {
        Move::new(b, "led-1", LAB, kind, count, amount)
    };
    let mut want = Vec::new();
    check(&net, "led-1", "nothing", usage(0, 0, 0, 0), &want).await;

    let b1 = str_of(&net.book_ok("led-1", &["CBC"], "led-b1").await["id"]);
    want.push(mv(&b1, "reserve", 1, 32_000));
    check(&net, "led-1", "booking", usage(0, 1, 0, 32_000), &want).await;
    net.event(&b1, json!({"type": "accept"})).await;
    check(&net, "led-1", "accept", usage(0, 1, 0, 32_000), &want).await;
    net.event(&b1, json!({"type": "started"})).await;
    check(&net, "led-1", "started", usage(0, 1, 0, 32_000), &want).await;
    // Billed 30,000 of 40,000 at the 80 % ratio: 24,000 consumed, 8,000 released.
    let done = net
        .event(&b1, json!({"type": "completed", "billed_paise": 30_000}))
        .await;
    assert_eq!(done["state"], "completed", "{done}");
    want.push(mv(&b1, "consume", 1, 24_000));
    want.push(mv(&b1, "release", 0, 8_000));
    check(&net, "led-1", "completed", usage(1, 0, 24_000, 0), &want).await;

    // A bill above the gross consumes the reservation and nothing more.
    let b2 = str_of(&net.book_ok("led-1", &["CBC"], "led-b2").await["id"]);
    want.push(mv(&b2, "reserve", 1, 32_000));
    check(
        &net,
        "led-1",
        "second booking",
        usage(1, 1, 24_000, 32_000),
        &want,
    )
    .await;
    net.complete(&b2, Some(55_000)).await;
    want.push(mv(&b2, "consume", 1, 32_000));
    check(&net, "led-1", "over-billed", usage(2, 0, 56_000, 0), &want).await;

    // A third, open one next to the completed two.
    let b3 = str_of(&net.book_ok("led-1", &["CBC"], "led-b3").await["id"]);
    want.push(mv(&b3, "reserve", 1, 32_000));
    let view = check(&net, "led-1", "third", usage(2, 1, 56_000, 32_000), &want).await;
    assert_eq!(view["member_id"], "led-1");
    assert_eq!(view["policy_id"], "led");
    assert_eq!(view["floater"], false);
    assert_eq!(view["holder"], "led-1");
    // A completed booking cannot be cancelled; the ledger does not move.
    net.app
        .cancel_booking(&net.key, &b1, "too late")
        .await
        .problem(409, "invalid_transition");
    check(
        &net,
        "led-1",
        "refused cancel",
        usage(2, 1, 56_000, 32_000),
        &want,
    )
    .await;
}

#[tokio::test]
async fn cancel_no_show_and_failure_release_the_whole_reservation() {
    let net = Net::build().await;
    net.policy("led", &ledger_policy()).await;
    net.member("led-2", &member("led", json!({}))).await;
    let mv = |b: &str, kind: &str| Move::new(b, "led-2", LAB, kind, 1, 32_000);
    let mut want = Vec::new();

    // Cancelled while pending.
    let b = str_of(&net.book_ok("led-2", &["CBC"], "rel-pending").await["id"]);
    want.push(mv(&b, "reserve"));
    check(&net, "led-2", "booking", usage(0, 1, 0, 32_000), &want).await;
    net.cancel(&b).await;
    want.push(mv(&b, "release"));
    check(&net, "led-2", "cancel (pending)", usage(0, 0, 0, 0), &want).await;

    // Cancelled once confirmed.
    let b = str_of(&net.book_ok("led-2", &["CBC"], "rel-confirmed").await["id"]);
    want.push(mv(&b, "reserve"));
    net.event(&b, json!({"type": "accept"})).await;
    check(&net, "led-2", "accept", usage(0, 1, 0, 32_000), &want).await;
    net.cancel(&b).await;
    want.push(mv(&b, "release"));
    check(
        &net,
        "led-2",
        "cancel (confirmed)",
        usage(0, 0, 0, 0),
        &want,
    )
    .await;

    // Cancelled in progress.
    let b = str_of(&net.book_ok("led-2", &["CBC"], "rel-started").await["id"]);
    want.push(mv(&b, "reserve"));
    net.event(&b, json!({"type": "accept"})).await;
    net.event(&b, json!({"type": "started"})).await;
    check(&net, "led-2", "started", usage(0, 1, 0, 32_000), &want).await;
    net.cancel(&b).await;
    want.push(mv(&b, "release"));
    check(
        &net,
        "led-2",
        "cancel (in progress)",
        usage(0, 0, 0, 0),
        &want,
    )
    .await;

    // No-show.
    let b = str_of(&net.book_ok("led-2", &["CBC"], "rel-noshow").await["id"]);
    want.push(mv(&b, "reserve"));
    net.event(&b, json!({"type": "accept"})).await;
    let ns = net
        .event(&b, json!({"type": "no_show", "reason": "nobody home"}))
        .await;
    assert_eq!(ns["state"], "no_show", "{ns}");
    want.push(mv(&b, "release"));
    check(&net, "led-2", "no_show", usage(0, 0, 0, 0), &want).await;

    // Failed: the only gold lab rejects and no provider is left.
    let b = str_of(&net.book_ok("led-2", &["CBC"], "rel-failed").await["id"]);
    want.push(mv(&b, "reserve"));
    check(&net, "led-2", "booking", usage(0, 1, 0, 32_000), &want).await;
    let failed = net
        .event(&b, json!({"type": "reject", "reason": "no phlebotomist"}))
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    want.push(mv(&b, "release"));
    check(&net, "led-2", "failed", usage(0, 0, 0, 0), &want).await;

    // Terminal bookings move nothing any more.
    net.app
        .cancel_booking(&net.key, &b, "again")
        .await
        .problem(409, "invalid_transition");
    check(
        &net,
        "led-2",
        "cancel of a failed booking",
        usage(0, 0, 0, 0),
        &want,
    )
    .await;
    assert_eq!(moves(&net.ents("led-2").await).len(), 10);
}

#[tokio::test]
async fn a_reject_reprices_at_the_next_lab_and_moves_the_reservation() {
    let net = Net::build().await;
    let other_key = net.add_gold_lab("el-gold-2", 45_000).await;
    let rate = |p: &str| if p == super::GOLD_LAB { CBC } else { 45_000 };
    let key_of = |p: &str| {
        if p == super::GOLD_LAB {
            net.gold_key.clone()
        } else {
            other_key.clone()
        }
    };
    // One visit only: the booking's own reservation must carry over to the next lab.
    net.policy(
        "one",
        &policy(json!([lab(
            json!({"copay_percent": 20, "annual_count": 1})
        )])),
    )
    .await;
    net.member("led-4", &member("one", json!({}))).await;
    let b = net.book_ok("led-4", &["CBC"], "reroute").await;
    let id = str_of(&b["id"]);
    let first = str_of(&b["provider_id"]);
    let cover1 = rate(&first) * 80 / 100;
    assert_eq!(
        super::amounts(&b),
        (rate(&first), cover1, rate(&first) - cover1)
    );
    let mut want = vec![Move::new(&id, "led-4", LAB, "reserve", 1, cover1)];
    let view = net.ents("led-4").await;
    assert_moves(&view, &want);

    let reason = json!({"type": "reject", "reason": "no slot"});
    let next = net
        .app
        .provider_event_with(&key_of(&first), &id, &reason)
        .await
        .ok(200);
    assert_eq!(next["state"], "pending_provider", "{next}");
    // The provider's view shows no cover; the partner's does.
    let next = net.app.get_booking(&net.key, &id).await.ok(200);
    let second = str_of(&next["provider_id"]);
    assert_ne!(second, first, "{next}");
    let cover2 = rate(&second) * 80 / 100;
    assert_eq!(
        super::amounts(&next),
        (rate(&second), cover2, rate(&second) - cover2),
        "re-priced at {second}: {next}"
    );
    want.push(Move::new(&id, "led-4", LAB, "release", 1, cover1));
    want.push(Move::new(&id, "led-4", LAB, "reserve", 1, cover2));
    let view = net.ents("led-4").await;
    assert_moves(&view, &want);
    let r = row(&view, LAB);
    assert_eq!(
        (r.count_reserved, r.count_remaining, r.amount_reserved),
        (1, Some(0), cover2),
        "{view}"
    );

    // The last lab rejects too: failed, everything released.
    let failed = net
        .app
        .provider_event_with(&key_of(&second), &id, &reason)
        .await
        .ok(200);
    assert_eq!(failed["state"], "failed", "{failed}");
    want.push(Move::new(&id, "led-4", LAB, "release", 1, cover2));
    let view = net.ents("led-4").await;
    assert_moves(&view, &want);
    assert_eq!(row(&view, LAB).count_remaining, Some(1), "{view}");
}

#[tokio::test]
async fn a_bill_over_two_benefits_consumes_at_the_reserved_ratio() {
    let net = Net::build().await;
    net.policy(
        "two-benefits",
        &policy(json!([
            lab(json!({"copay_percent": 20, "annual_count": 10, "annual_limit_paise": 500_000})),
            {"service_code": "CBC", "annual_count": 10, "annual_limit_paise": 500_000},
        ])),
    )
    .await;
    net.member("led-3", &member("two-benefits", json!({})))
        .await;
    let b = net.book_ok("led-3", &["CBC", "LIPID"], "two").await;
    let id = str_of(&b["id"]);
    // CBC 40,000 fully covered; LIPID 60,000 at 80 % = 48,000.
    let reserved = [("service:CBC", CBC), (LAB, LIPID * 80 / 100)];
    let covered: i64 = reserved.iter().map(|(_, a)| a).sum();
    assert_eq!(
        super::amounts(&b),
        (CBC + LIPID, covered, CBC + LIPID - covered)
    );
    net.complete(&id, Some(50_000)).await;

    let view = net.ents("led-3").await;
    // The bill is half the gross: half of the cover is consumed, the rest released.
    let want_total = 50_000 * covered / (CBC + LIPID);
    let mut consumed_total = 0;
    for (benefit, amount) in reserved {
        let of = |kind: &str| -> Vec<Move> {
            moves(&view)
                .into_iter()
                .filter(|m| m.benefit == benefit && m.kind == kind)
                .collect()
        };
        let (res, con, rel) = (of("reserve"), of("consume"), of("release"));
        assert_eq!(
            res,
            vec![Move::new(&id, "led-3", benefit, "reserve", 1, amount)]
        );
        assert_eq!(con.len(), 1, "{benefit}: one consume: {view}");
        assert_eq!(con[0].count, 1, "{benefit}: {view}");
        let released: i64 = rel.iter().map(|m| m.amount).sum();
        assert!(
            rel.iter().all(|m| m.count == 0),
            "{benefit}: a consumed visit was also released: {view}"
        );
        assert_eq!(
            con[0].amount + released,
            amount,
            "{benefit}: consumed + released != reserved: {view}"
        );
        let r = row(&view, benefit);
        assert_eq!(
            (
                r.count_used,
                r.count_reserved,
                r.amount_used,
                r.amount_reserved
            ),
            (1, 0, con[0].amount, 0),
            "{benefit}: {view}"
        );
        consumed_total += con[0].amount;
    }
    assert_eq!(
        consumed_total, want_total,
        "billed 50,000 of 100,000 gross at cover {covered}: {view}"
    );
}

#[tokio::test]
async fn the_dry_run_reserves_nothing() {
    let net = Net::build().await;
    net.policy(
        "one-left",
        &policy(json!([lab(json!({
            "copay_percent": 20,
            "annual_count": 1,
            "annual_limit_paise": 50_000,
        }))])),
    )
    .await;
    net.member("dry", &member("one-left", json!({}))).await;
    let before = net.ents("dry").await;

    let n = &net;
    let answers = all_at_once(10, |_| async move {
        n.app
            .post("/v1/eligibility", &n.key, &dry_run_body("dry", &["CBC"]))
            .await
    })
    .await;
    for r in &answers {
        let d = r.ok(200);
        assert_eq!(d["eligible"], true, "{d}");
        assert_eq!(int(&d["covered_paise"]), 32_000, "{d}");
        assert_eq!(
            d["remaining"][LAB],
            json!({"count_remaining": 1, "amount_remaining_paise": 50_000}),
            "{d}"
        );
    }
    // Without slot and address too (today, at the member's pincode).
    let d = net
        .dry_run_with(&json!({"member_id": "dry", "services": ["CBC"]}))
        .await;
    assert!(d["eligible"].is_boolean(), "{d}");
    net.dry_run_with(&json!({"member_id": "nobody", "services": ["CBC"]}))
        .await;
    let after = net.ents("dry").await;
    assert_eq!(after, before, "the dry runs changed the entitlements");

    // The one visit is still there for a real booking.
    let b = net.book_ok("dry", &["CBC"], "dry-real").await;
    let view = net.ents("dry").await;
    assert_moves(
        &view,
        &[Move::new(
            &str_of(&b["id"]),
            "dry",
            LAB,
            "reserve",
            1,
            32_000,
        )],
    );
    let d = net.dry_run("dry", &["CBC"]).await;
    super::assert_dry_ineligible(&d, &["count_limit_exhausted"]);
    let r = row(&view, LAB);
    assert_eq!(
        d["remaining"][LAB],
        json!({"count_remaining": r.count_remaining, "amount_remaining_paise": r.amount_remaining}),
        "dry run and entitlements disagree: {d} vs {view}"
    );
    assert_eq!(
        net.ents("dry").await,
        view,
        "a refused dry run moved the ledger"
    );
}

#[tokio::test]
async fn each_policy_year_has_its_own_ledger_from_the_valid_from_anniversary() {
    let net = Net::build().await;
    // Years run 07-01..06-30; one visit a year.
    let mut mid_year = policy(json!([lab(json!({"annual_count": 1}))]));
    mid_year["valid_from"] = json!("2029-07-01");
    mid_year["valid_to"] = json!("2032-06-30");
    net.policy("mid", &mid_year).await;
    net.member("yr", &member("mid", json!({"enrolled_on": "2029-07-01"})))
        .await;
    let at = |start: &str, end: &str| super::booking_at("yr", &["CBC"], start, end);
    // 23:00 India time on 2030-06-30: the last day of the first year.
    let last = ("2030-06-30T17:30:00Z", "2030-06-30T18:00:00Z");
    // 00:30 India time on 2030-07-01 (still 06-30 in UTC): the second year.
    let first = ("2030-06-30T19:00:00Z", "2030-06-30T20:00:00Z");
    let b1 = net.assert_admitted(&at(last.0, last.1)).await;
    net.assert_refused(&at(last.0, last.1), &["count_limit_exhausted"])
        .await;
    let b2 = net.assert_admitted(&at(first.0, first.1)).await;
    net.assert_refused(&at(first.0, first.1), &["count_limit_exhausted"])
        .await;

    for (on, from, to, booking) in [
        ("2030-06-30", "2029-07-01", "2030-06-30", &b1),
        ("2029-07-01", "2029-07-01", "2030-06-30", &b1),
        ("2030-07-01", "2030-07-01", "2031-06-30", &b2),
        ("2031-06-30", "2030-07-01", "2031-06-30", &b2),
    ] {
        let view = net
            .app
            .get(
                &format!("/v1/members/yr/entitlements?on={on}"),
                Some(&net.key),
            )
            .await
            .ok(200);
        super::assert_adds_up(&view);
        assert_eq!(
            view["policy_year"],
            json!({"from": from, "to": to}),
            "on {on}"
        );
        let r = row(&view, LAB);
        assert_eq!(
            (r.count_reserved, r.count_remaining),
            (1, Some(0)),
            "on {on}: {view}"
        );
        assert_moves(
            &view,
            &[Move::new(
                &str_of(&booking["id"]),
                "yr",
                LAB,
                "reserve",
                1,
                CBC,
            )],
        );
    }
    // A year with nothing booked.
    let view = net
        .app
        .get("/v1/members/yr/entitlements?on=2031-07-01", Some(&net.key))
        .await
        .ok(200);
    super::assert_adds_up(&view);
    assert_eq!(row(&view, LAB).count_remaining, Some(1), "{view}");
    assert!(moves(&view).is_empty(), "{view}");
    // Another partner cannot read it.
    net.app
        .get("/v1/members/yr/entitlements", Some(&net.other_key))
        .await
        .problem(404, "not_found");
}
