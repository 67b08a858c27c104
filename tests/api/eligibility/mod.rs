//! Eligibility, pricing and the entitlement ledger, black-box.
//!
//! Every test builds its own small network ([`Net::build`]) so prices and routing are exact:
//! one gold lab serving 560001 (the only provider a gold policy can use there) and one silver
//! lab serving only 560002. Slots are on 2030-01-01 (India date); policies run
//! 2029-01-01..=2031-12-31, so the policy year of every slot is 2030-01-01..=2030-12-31.
//!
//! - [`reasons`]: every reason code from a member built to hit it, several at once, and the
//!   India-date boundaries of the rules.
//! - [`amounts`]: copay, per-visit cap, a nearly used limit, per-service benefits, rounding.
//! - [`races`]: concurrent bookings against a count limit, single and floater.
//! - [`ledger`]: reserve / consume / release through completion, cancel, no-show and failure,
//!   with the entitlements view checked after every step; the dry run reserves nothing.
//! - [`crash`]: SIGKILL in the middle of a burst of bookings against a limited member.
//! - [`import`]: the CSV roster import.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::harness::{str_of, Resp, TestApp, SLOT_END, SLOT_START};

mod amounts;
mod crash;
mod import;
mod ledger;
mod races;
mod reasons;

/// The India date of [`SLOT_START`] and the day the entitlements view is asked about.
pub(crate) const SLOT_DAY: &str = "2030-01-01";
pub(crate) const VALID_FROM: &str = "2029-01-01";
pub(crate) const VALID_TO: &str = "2031-12-31";
/// The policy year containing [`SLOT_DAY`].
pub(crate) const YEAR: (&str, &str) = ("2030-01-01", "2030-12-31");

/// The gold lab's rates (paise).
pub(crate) const CBC: i64 = 40_000;
pub(crate) const LIPID: i64 = 60_000;
pub(crate) const TSH: i64 = 12_345;

pub(crate) const GOLD_LAB: &str = "el-gold";
pub(crate) const SILVER_LAB: &str = "el-silver";

/// The 560001 address (the gold lab's doorstep).
pub(crate) fn home() -> Value {
    json!({"pincode": "560001", "lat": 12.9716, "lon": 77.5946})
}

/// A 560002 address, 1.9 km from the gold lab (outside its 1 km radius and pincodes).
pub(crate) fn elsewhere() -> Value {
    json!({"pincode": "560002", "lat": 12.9850, "lon": 77.6050})
}

/// `ECG` is in the catalog (category lab) but no provider offers it.
///
/// The test network and one partner (`pe`) with its key; a second partner (`px`) for
/// tenancy checks.
pub(crate) struct Net {
    pub(crate) app: TestApp,
    pub(crate) key: String,
    pub(crate) other_key: String,
    pub(crate) gold_key: String,
}

fn created_or_replaced(what: &str, r: &Resp) -> Value {
    assert!(
        r.status == 200 || r.status == 201,
        "{what}: expected 200/201, got {} {}",
        r.status,
        r.text()
    );
    r.json()
}

fn provider_body(tier: &str, at: &Value, serves: &[&str], services: Value) -> Value {
    json!({
        "name": format!("Lab {tier}"),
        "kind": "lab",
        "network_tier": tier,
        "location": at,
        "serviceable_pincodes": serves,
        "radius_km": 1,
        "services": services,
        "daily_capacity": 100_000,
        "sla": {"accept_within": "30m", "fulfil_grace": "2h"},
        "quality_score": 4.0,
        "active": true,
    })
}

impl Net {
    /// Starts a server with the default test config and installs the network.
    pub(crate) async fn build() -> Net {
        Net::install(TestApp::spawn().await).await
    }

    pub(crate) async fn install(app: TestApp) -> Net {
        for (code, category) in [
            ("CBC", "lab"),
            ("LIPID", "lab"),
            ("TSH", "lab"),
            ("CONSULT", "consultation"),
            ("ECG", "lab"),
        ] {
            let body =
                json!({"name": format!("{code} test"), "category": category, "report_tat": "24h"});
            created_or_replaced("PUT catalog", &app.put_catalog(code, &body).await);
        }
        let gold = provider_body(
            "gold",
            &json!({"lat": 12.9716, "lon": 77.5946, "pincode": "560001"}),
            &["560001"],
            json!({
                "CBC": {"rate_paise": CBC},
                "LIPID": {"rate_paise": LIPID},
                "TSH": {"rate_paise": TSH},
                "CONSULT": {"rate_paise": 50_000},
            }),
        );
        created_or_replaced("PUT gold lab", &app.put_provider(GOLD_LAB, &gold).await);
        let silver = provider_body(
            "silver",
            &json!({"lat": 12.9850, "lon": 77.6050, "pincode": "560002"}),
            &["560002"],
            json!({
                "CBC": {"rate_paise": 20_000},
                "LIPID": {"rate_paise": 20_000},
                "TSH": {"rate_paise": 20_000},
                "CONSULT": {"rate_paise": 20_000},
            }),
        );
        created_or_replaced(
            "PUT silver lab",
            &app.put_provider(SILVER_LAB, &silver).await,
        );
        let gold_key = app.provider_key(GOLD_LAB).await;
        let mut keys = Vec::new();
        for id in ["pe", "px"] {
            let body = json!({
                "name": format!("Partner {id}"),
                "branding": {
                    "display_name": format!("Partner {id}"),
                    "logo_url": "https://example.com/logo.png",
                    "primary_color": "#123456",
                    "accent_color": "#654321",
                    "domain": format!("{id}.example.com")
                },
                "sso": {"hs256_secret": "0123456789abcdef0123456789abcdef", "allowed_return_origins": []}
            });
            created_or_replaced("PUT partner", &app.put_partner(id, &body).await);
            keys.push(app.partner_key(id).await);
        }
        let other_key = keys.pop().expect("px key");
        let key = keys.pop().expect("pe key");
        Net {
            app,
            key,
            other_key,
            gold_key,
        }
    }

    /// Adds another gold lab next door serving 560001 with CBC at `cbc_rate`; returns its key.
    pub(crate) async fn add_gold_lab(&self, id: &str, cbc_rate: i64) -> String {
        let body = provider_body(
            "gold",
            &json!({"lat": 12.9730, "lon": 77.5960, "pincode": "560001"}),
            &["560001"],
            json!({"CBC": {"rate_paise": cbc_rate}}),
        );
        created_or_replaced(
            "PUT second gold lab",
            &self.app.put_provider(id, &body).await,
        );
        self.app.provider_key(id).await
    }

    pub(crate) async fn policy(&self, id: &str, body: &Value) {
        created_or_replaced(
            &format!("PUT policy {id}"),
            &self.app.put_policy(&self.key, id, body).await,
        );
    }

    pub(crate) async fn member(&self, id: &str, body: &Value) {
        created_or_replaced(
            &format!("PUT member {id}"),
            &self.app.put_member(&self.key, id, body).await,
        );
    }

    /// `POST /v1/bookings` for `member` with `services` in the standard slot at home.
    pub(crate) async fn book(&self, member: &str, services: &[&str], reference: &str) -> Resp {
        self.app
            .create_booking(&self.key, &booking(member, services, reference))
            .await
    }

    /// Books and asserts 201; returns the booking view.
    pub(crate) async fn book_ok(&self, member: &str, services: &[&str], reference: &str) -> Value {
        self.book(member, services, reference).await.ok(201)
    }

    /// `POST /v1/eligibility` with `body` (asserts 200).
    pub(crate) async fn dry_run_with(&self, body: &Value) -> Value {
        self.app
            .post("/v1/eligibility", &self.key, body)
            .await
            .ok(200)
    }

    /// A dry run of [`booking`] for `member` and `services`.
    pub(crate) async fn dry_run(&self, member: &str, services: &[&str]) -> Value {
        self.dry_run_with(&dry_run_body(member, services)).await
    }

    /// The dry run of booking `body` refuses with exactly `want`, then the booking itself is
    /// refused (422 `ineligible`) with exactly `want`, and no booking of the member appears.
    pub(crate) async fn assert_refused(&self, body: &Value, want: &[&str]) {
        let member = str_of(&body["member_id"]);
        let before = self.bookings_of(&member).await.len();
        let mut ask = body.clone();
        if let Some(o) = ask.as_object_mut() {
            o.remove("partner_ref");
        }
        let d = self.dry_run_with(&ask).await;
        assert_dry_ineligible(&d, want);
        let r = self.app.create_booking(&self.key, body).await;
        assert_ineligible(&r, want);
        assert_eq!(
            self.bookings_of(&member).await.len(),
            before,
            "a refused booking of {member} was listed"
        );
    }

    /// The dry run of booking `body` says eligible, then the booking is created (201).
    pub(crate) async fn assert_admitted(&self, body: &Value) -> Value {
        let mut ask = body.clone();
        if let Some(o) = ask.as_object_mut() {
            o.remove("partner_ref");
        }
        let d = self.dry_run_with(&ask).await;
        assert_eq!(d["eligible"], true, "dry run of {body}: {d}");
        assert_eq!(d["reasons"], json!([]), "dry run of {body}: {d}");
        self.app.create_booking(&self.key, body).await.ok(201)
    }

    /// The entitlements view on [`SLOT_DAY`] (asserts 200 and that it adds up).
    pub(crate) async fn ents(&self, member: &str) -> Value {
        let v = self
            .app
            .get(
                &format!("/v1/members/{member}/entitlements?on={SLOT_DAY}"),
                Some(&self.key),
            )
            .await
            .ok(200);
        assert_adds_up(&v);
        v
    }

    /// Every booking of `member` (all pages).
    pub(crate) async fn bookings_of(&self, member: &str) -> Vec<Value> {
        self.app
            .list_all_bookings(&self.key, &format!("member_id={member}"))
            .await
    }

    /// A gold-lab provider event (asserts 200, returns the booking view).
    pub(crate) async fn event(&self, booking_id: &str, body: Value) -> Value {
        self.app
            .provider_event_with(&self.gold_key, booking_id, &body)
            .await
            .ok(200)
    }

    /// Runs a booking at the gold lab through accept, started and completed with `billed`.
    pub(crate) async fn complete(&self, booking_id: &str, billed: Option<i64>) -> Value {
        self.event(booking_id, json!({"type": "accept"})).await;
        self.event(booking_id, json!({"type": "started"})).await;
        let body = match billed {
            Some(b) => json!({"type": "completed", "billed_paise": b}),
            None => json!({"type": "completed"}),
        };
        let done = self.event(booking_id, body).await;
        assert_eq!(done["state"], "completed", "{done}");
        done
    }

    pub(crate) async fn cancel(&self, booking_id: &str) -> Value {
        let b = self
            .app
            .cancel_booking(&self.key, booking_id, "member asked")
            .await
            .ok(200);
        assert_eq!(b["state"], "cancelled", "{b}");
        b
    }
}

/// A policy in force [`VALID_FROM`]..=[`VALID_TO`] on the gold network with `benefits`.
pub(crate) fn policy(benefits: Value) -> Value {
    json!({
        "valid_from": VALID_FROM,
        "valid_to": VALID_TO,
        "floater": false,
        "network_tiers": ["gold"],
        "benefits": benefits,
    })
}

/// `{category: "lab"}` with `extra`'s fields added.
pub(crate) fn lab(extra: Value) -> Value {
    merged(json!({"category": "lab"}), extra)
}

/// A member of `policy_id` at 560001, enrolled on [`VALID_FROM`], aged 44 on the slot day,
/// with `extra`'s fields added or replaced.
pub(crate) fn member(policy_id: &str, extra: Value) -> Value {
    merged(
        json!({
            "policy_id": policy_id,
            "relationship": "self",
            "dob": "1985-06-15",
            "gender": "female",
            "pincode": "560001",
            "name": "Asha Rao",
            "phone": "+919800000001",
            "enrolled_on": VALID_FROM,
        }),
        extra,
    )
}

pub(crate) fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// A home collection in the standard slot at 560001.
pub(crate) fn booking(member: &str, services: &[&str], reference: &str) -> Value {
    json!({
        "member_id": member,
        "services": services,
        "mode": "home_collection",
        "slot": {"start": SLOT_START, "end": SLOT_END},
        "address": home(),
        "partner_ref": reference,
    })
}

/// [`booking`] with another slot.
pub(crate) fn booking_at(member: &str, services: &[&str], start: &str, end: &str) -> Value {
    let mut b = booking(member, services, "slot-edge");
    b["slot"] = json!({"start": start, "end": end});
    b
}

/// The dry-run body matching [`booking`].
pub(crate) fn dry_run_body(member: &str, services: &[&str]) -> Value {
    json!({
        "member_id": member,
        "services": services,
        "mode": "home_collection",
        "slot": {"start": SLOT_START, "end": SLOT_END},
        "address": home(),
    })
}

/// The set of reason codes in `reasons`, asserting each has a message and none repeats.
#[track_caller]
pub(crate) fn codes(reasons: &Value) -> BTreeSet<String> {
    let list = reasons
        .as_array()
        .unwrap_or_else(|| panic!("reasons is not a list: {reasons}"));
    let mut set = BTreeSet::new();
    for r in list {
        let code = str_of(&r["code"]);
        assert!(
            r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "reason without a message: {r}"
        );
        assert!(set.insert(code.clone()), "{code} reported twice: {reasons}");
    }
    set
}

pub(crate) fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|c| c.to_string()).collect()
}

/// Asserts a 422 `ineligible` problem with exactly `want` reason codes.
#[track_caller]
pub(crate) fn assert_ineligible(r: &Resp, want: &[&str]) {
    let p = r.problem(422, "ineligible");
    assert_eq!(codes(&p["reasons"]), set(want), "reason codes of {p}");
}

/// Asserts a dry run said "not eligible" with exactly `want` reason codes.
#[track_caller]
pub(crate) fn assert_dry_ineligible(d: &Value, want: &[&str]) {
    assert_eq!(d["eligible"], false, "dry run: {d}");
    assert_eq!(
        codes(&d["reasons"]),
        set(want),
        "dry-run reason codes of {d}"
    );
}

#[track_caller]
pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// `(gross, covered, copay)` of a booking view's `amounts`.
#[track_caller]
pub(crate) fn amounts(b: &Value) -> (i64, i64, i64) {
    let a = &b["amounts"];
    (
        int(&a["gross_paise"]),
        int(&a["covered_paise"]),
        int(&a["copay_paise"]),
    )
}

/// `(gross, covered, copay)` of a dry run.
#[track_caller]
pub(crate) fn dry_amounts(d: &Value) -> (i64, i64, i64) {
    (
        int(&d["gross_paise"]),
        int(&d["covered_paise"]),
        int(&d["copay_paise"]),
    )
}

/// One benefit row of the entitlements view, as numbers (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) count_used: i64,
    pub(crate) count_reserved: i64,
    pub(crate) count_remaining: Option<i64>,
    pub(crate) amount_used: i64,
    pub(crate) amount_reserved: i64,
    pub(crate) amount_remaining: Option<i64>,
}

/// The row of `benefit` (e.g. `category:lab`) in an entitlements view.
#[track_caller]
pub(crate) fn row(view: &Value, benefit: &str) -> Row {
    let b = benefit_of(view, benefit);
    Row {
        count_used: int(&b["count_used"]),
        count_reserved: int(&b["count_reserved"]),
        count_remaining: b["count_remaining"].as_i64(),
        amount_used: int(&b["amount_used_paise"]),
        amount_reserved: int(&b["amount_reserved_paise"]),
        amount_remaining: b["amount_remaining_paise"].as_i64(),
    }
}

#[track_caller]
fn benefit_of<'a>(view: &'a Value, benefit: &str) -> &'a Value {
    view["benefits"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["benefit"] == benefit))
        .unwrap_or_else(|| panic!("no benefit {benefit} in {view}"))
}

/// One ledger move as listed, without its time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Move {
    pub(crate) booking_id: String,
    pub(crate) member_id: String,
    pub(crate) benefit: String,
    pub(crate) kind: String,
    pub(crate) count: i64,
    pub(crate) amount: i64,
}

impl Move {
    pub(crate) fn new(
        booking_id: &str,
        member_id: &str,
        benefit: &str,
        kind: &str,
        count: i64,
        amount: i64,
    ) -> Move {
        Move {
            booking_id: booking_id.to_string(),
            member_id: member_id.to_string(),
            benefit: benefit.to_string(),
            kind: kind.to_string(),
            count,
            amount,
        }
    }
}

/// The moves of an entitlements view (a release of nothing, count 0 and amount 0, is
/// dropped: it changes nothing).
#[track_caller]
pub(crate) fn moves(view: &Value) -> Vec<Move> {
    view["moves"]
        .as_array()
        .unwrap_or_else(|| panic!("entitlements without a moves list: {view}"))
        .iter()
        .map(|m| {
            Move::new(
                &str_of(&m["booking_id"]),
                &str_of(&m["member_id"]),
                &str_of(&m["benefit"]),
                &str_of(&m["kind"]),
                int(&m["count"]),
                int(&m["amount_paise"]),
            )
        })
        .filter(|m| !(m.kind == "release" && m.count == 0 && m.amount == 0))
        .collect()
}

/// Asserts the listed moves are exactly `want` (in any order).
#[track_caller]
pub(crate) fn assert_moves(view: &Value, want: &[Move]) {
    let mut have = moves(view);
    let mut want = want.to_vec();
    have.sort();
    want.sort();
    assert_eq!(have, want, "moves of {}", view["moves"]);
}

fn instant(v: &Value) -> OffsetDateTime {
    let s = str_of(v);
    OffsetDateTime::parse(&s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// The entitlements view adds up: for every benefit, used + reserved + remaining equals the
/// annual count / limit (when there is one), nothing is negative, and replaying the listed
/// moves gives exactly the used and reserved figures. Each booking's consume or release
/// comes no earlier than its reserve.
#[track_caller]
pub(crate) fn assert_adds_up(view: &Value) {
    let benefits = view["benefits"]
        .as_array()
        .unwrap_or_else(|| panic!("entitlements without benefits: {view}"));
    // benefit -> (count_used, count_reserved, amount_used, amount_reserved) from the moves
    let mut replay: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    let mut first_reserve: BTreeMap<(String, String), OffsetDateTime> = BTreeMap::new();
    for m in view["moves"].as_array().expect("moves list") {
        let benefit = str_of(&m["benefit"]);
        let (count, amount) = (int(&m["count"]), int(&m["amount_paise"]));
        assert!(count >= 0 && amount >= 0, "negative move {m}");
        let at = instant(&m["at"]);
        let r = replay.entry(benefit.clone()).or_default();
        let booking = str_of(&m["booking_id"]);
        match m["kind"].as_str() {
            Some("reserve") => {
                r.1 += count;
                r.3 += amount;
                first_reserve.entry((booking, benefit)).or_insert(at);
            }
            Some("consume") => {
                r.1 -= count;
                r.3 -= amount;
                r.0 += count;
                r.2 += amount;
                let reserved = first_reserve.get(&(booking, benefit));
                assert!(
                    reserved.is_some_and(|t| *t <= at),
                    "consume before (or without) its reserve: {m}"
                );
            }
            Some("release") => {
                r.1 -= count;
                r.3 -= amount;
                let reserved = first_reserve.get(&(booking, benefit));
                assert!(
                    reserved.is_some_and(|t| *t <= at),
                    "release before (or without) its reserve: {m}"
                );
            }
            other => panic!("move of unknown kind {other:?}: {m}"),
        }
    }
    for b in benefits {
        let name = str_of(&b["benefit"]);
        let r = row(view, &name);
        assert!(
            r.count_used >= 0
                && r.count_reserved >= 0
                && r.amount_used >= 0
                && r.amount_reserved >= 0,
            "negative usage for {name}: {b}"
        );
        match b["annual_count"].as_i64() {
            Some(annual) => assert_eq!(
                r.count_used + r.count_reserved + r.count_remaining.unwrap_or(-1),
                annual,
                "{name}: count_used + count_reserved + count_remaining != annual_count: {b}"
            ),
            None => assert!(b["annual_count"].is_null(), "{b}"),
        }
        match b["annual_limit_paise"].as_i64() {
            Some(limit) => assert_eq!(
                r.amount_used + r.amount_reserved + r.amount_remaining.unwrap_or(-1),
                limit,
                "{name}: amount used + reserved + remaining != annual_limit_paise: {b}"
            ),
            None => assert!(b["annual_limit_paise"].is_null(), "{b}"),
        }
        let (cu, cr, au, ar) = replay.remove(&name).unwrap_or_default();
        assert_eq!(
            (cu, cr, au, ar),
            (
                r.count_used,
                r.count_reserved,
                r.amount_used,
                r.amount_reserved
            ),
            "{name}: replaying the moves (count used, reserved, amount used, reserved) \
             differs from the view: {view}"
        );
    }
    assert!(
        replay.is_empty(),
        "moves of benefits the view does not list: {replay:?} in {view}"
    );
}

/// Fires `n` requests at once (all in flight together) and returns the answers in order.
pub(crate) async fn all_at_once<F, Fut>(n: usize, f: F) -> Vec<Resp>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    futures::future::join_all((0..n).map(f)).await
}

/// Splits burst answers into 201 booking views and 422 problems; panics on anything else.
#[track_caller]
pub(crate) fn split(answers: &[Resp]) -> (Vec<Value>, Vec<Value>) {
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for r in answers {
        match r.status {
            201 => admitted.push(r.json()),
            422 => refused.push(r.problem(422, "ineligible")),
            _ => panic!("unexpected answer {} {}", r.status, r.text()),
        }
    }
    (admitted, refused)
}
