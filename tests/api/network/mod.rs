//! Provider routing over HTTP, black-box, on small networks in two cities.
//!
//! Every test builds its own network with [`Net`]: the catalog (`CBC`, `LIPID`, `XRAY`, all
//! lab), partner `pa` from the shared harness (policy `pa-gold`, gold tier only, no copay,
//! members `pa-m0..pa-m3` in 560001 and `pa-mum` in 400001) and the providers the test adds
//! with [`lab`] + [`Net::add`]. Addresses: [`BLR`] (Bengaluru, 560001, 12.9716 / 77.5946) and
//! [`MUM`] (Mumbai, 400001, 18.93 / 72.83).
//!
//! - [`ranking`]: nearest wins when all else is equal, ties by provider id, the weights of
//!   `[routing] weights` (a farther, better lab wins when quality weighs most), two cities.
//! - [`exclusions`]: every exclusion reason in `routing.excluded` and `GET …/routing`,
//!   open hours in India time, providers outside the indexes listed nowhere.
//! - [`capacity`]: `daily_capacity` per India day, the next provider takes the overflow,
//!   a cancel frees the slot.
//! - [`reject`]: reject → next provider → reject → `failed`, entitlement released,
//!   `no_provider` exception.
//! - [`tiers`]: inactive providers and providers outside the policy's `network_tiers`.
//! - [`isolation`]: a provider sees only its own bookings; data minimisation before accept.
//! - [`concurrency`]: 50 concurrent bookings against 20 slots, then SIGKILL and restart.
//! - [`filters`]: `GET /v1/admin/providers?pincode=&service=&active=`.
//! - [`racing`]: provider writes racing bookings (the committer's batch rule for the
//!   in-memory network index).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::harness::{str_of, Partner, Resp, TestApp, World};

mod capacity;
mod concurrency;
mod exclusions;
mod filters;
mod isolation;
mod racing;
mod ranking;
mod reject;
mod tiers;

/// A Bengaluru address (pincode 560001).
pub(crate) const BLR: (f64, f64, &str) = (12.9716, 77.5946, "560001");
/// A Mumbai address (pincode 400001).
pub(crate) const MUM: (f64, f64, &str) = (18.93, 72.83, "400001");

/// Default rates of [`lab`] (paise).
pub(crate) const CBC: i64 = 40_000;
pub(crate) const LIPID: i64 = 60_000;

/// 2030-01-01 (a Tuesday), 14:30-15:30 India time.
pub(crate) const SLOT: (&str, &str) = ("2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z");
/// The India date of [`SLOT`].
pub(crate) const SLOT_DAY: &str = "2030-01-01";

/// A gold lab at `(lat, lon)` listing `pincode` among its serviceable pincodes, radius 10 km,
/// CBC + LIPID at [`CBC`] / [`LIPID`], capacity 1000, quality 4.0, active, always open.
/// Tests change fields of the returned body before [`Net::add`].
pub(crate) fn lab(lat: f64, lon: f64, pincode: &str) -> Value {
    json!({
        "name": format!("Lab at {lat},{lon}"),
        "kind": "lab",
        "network_tier": "gold",
        "location": {"lat": lat, "lon": lon, "pincode": pincode},
        "serviceable_pincodes": [pincode],
        "radius_km": 10,
        "services": {"CBC": {"rate_paise": CBC}, "LIPID": {"rate_paise": LIPID}},
        "daily_capacity": 1000,
        "sla": {"accept_within": "30m", "fulfil_grace": "2h"},
        "quality_score": 4.0,
        "active": true,
    })
}

/// One test's network and partner.
pub(crate) struct Net {
    pub(crate) partner: Partner,
    /// Provider id → provider key.
    pub(crate) keys: BTreeMap<String, String>,
}

impl Net {
    /// The catalog and partner `pa`; no providers yet.
    pub(crate) async fn build(app: &TestApp) -> Net {
        for (code, tat) in [("CBC", "24h"), ("LIPID", "48h"), ("XRAY", "24h")] {
            let body =
                json!({"name": format!("{code} test"), "category": "lab", "report_tat": tat});
            let r = app.put_catalog(code, &body).await;
            assert!(
                r.status == 200 || r.status == 201,
                "PUT catalog {code}: {} {}",
                r.status,
                r.text()
            );
        }
        let partner = World::add_partner(app, "pa").await;
        Net {
            partner,
            keys: BTreeMap::new(),
        }
    }

    /// Creates provider `id` (asserts 201) and issues its key.
    pub(crate) async fn add(&mut self, app: &TestApp, id: &str, body: &Value) {
        app.put_provider(id, body).await.ok(201);
        let key = app.provider_key(id).await;
        self.keys.insert(id.to_string(), key);
    }

    /// The key of provider `id`.
    #[track_caller]
    pub(crate) fn key(&self, id: &str) -> &str {
        self.keys
            .get(id)
            .unwrap_or_else(|| panic!("no provider {id} in this network"))
    }

    /// The partner key.
    pub(crate) fn pk(&self) -> &str {
        &self.partner.key
    }

    /// Member `n` (0..4) of partner `pa` (Bengaluru).
    pub(crate) fn member(&self, n: usize) -> &str {
        &self.partner.members[n]
    }
}

/// A home-collection booking body.
pub(crate) fn booking(
    member: &str,
    services: &[&str],
    slot: (&str, &str),
    at: (f64, f64, &str),
    partner_ref: &str,
) -> Value {
    json!({
        "member_id": member,
        "services": services,
        "mode": "home_collection",
        "slot": {"start": slot.0, "end": slot.1},
        "address": {"pincode": at.2, "lat": at.0, "lon": at.1},
        "partner_ref": partner_ref,
    })
}

/// A CBC + LIPID booking at [`BLR`] in [`SLOT`].
pub(crate) fn blr_booking(member: &str, partner_ref: &str) -> Value {
    booking(member, &["CBC", "LIPID"], SLOT, BLR, partner_ref)
}

/// The provider ids of a routing decision's `candidates`, in order.
#[track_caller]
pub(crate) fn candidate_ids(routing: &Value) -> Vec<String> {
    routing["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("routing.candidates is not a list: {routing}"))
        .iter()
        .map(|c| str_of(&c["provider_id"]))
        .collect()
}

/// Provider id → reason of a routing decision's `excluded` (each provider at most once).
#[track_caller]
pub(crate) fn excluded_map(routing: &Value) -> BTreeMap<String, String> {
    let list = routing["excluded"]
        .as_array()
        .unwrap_or_else(|| panic!("routing.excluded is not a list: {routing}"));
    let mut out = BTreeMap::new();
    for e in list {
        let prev = out.insert(str_of(&e["provider_id"]), str_of(&e["reason"]));
        assert!(prev.is_none(), "a provider is excluded twice: {routing}");
    }
    out
}

/// The candidate entry of `provider` in a routing decision.
#[track_caller]
pub(crate) fn candidate<'a>(routing: &'a Value, provider: &str) -> &'a Value {
    routing["candidates"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["provider_id"] == provider))
        .unwrap_or_else(|| panic!("{provider} is not a candidate: {routing}"))
}

/// Every provider id a routing decision mentions (candidates and excluded).
pub(crate) fn mentioned(routing: &Value) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = candidate_ids(routing).into_iter().collect();
    ids.extend(excluded_map(routing).into_keys());
    ids
}

/// `GET /v1/bookings/{id}/routing` → its `items` (every attempt, oldest first).
pub(crate) async fn routing_items(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/bookings/{id}/routing"), Some(key))
        .await
        .ok(200);
    r["items"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /v1/bookings/{id}/routing: no items list: {r}"))
        .clone()
}

/// The reason codes of a 422 `ineligible` problem.
#[track_caller]
pub(crate) fn reason_codes(r: &Resp) -> Vec<String> {
    let p = r.problem(422, "ineligible");
    p["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("ineligible problem without reasons: {p}"))
        .iter()
        .map(|x| str_of(&x["code"]))
        .collect()
}

/// The (only) benefit row of `member`'s entitlements on `day`.
pub(crate) async fn lab_benefit(app: &TestApp, key: &str, member: &str, day: &str) -> Value {
    let v = app
        .get(
            &format!("/v1/members/{member}/entitlements?on={day}"),
            Some(key),
        )
        .await
        .ok(200);
    let benefits = v["benefits"]
        .as_array()
        .unwrap_or_else(|| panic!("entitlements without benefits: {v}"));
    assert_eq!(benefits.len(), 1, "expected the one lab benefit: {v}");
    benefits[0].clone()
}

/// `count_reserved` and `amount_reserved_paise` of a benefit row.
#[track_caller]
pub(crate) fn reserved(b: &Value) -> (i64, i64) {
    (
        b["count_reserved"]
            .as_i64()
            .unwrap_or_else(|| panic!("no count_reserved: {b}")),
        b["amount_reserved_paise"]
            .as_i64()
            .unwrap_or_else(|| panic!("no amount_reserved_paise: {b}")),
    )
}

/// The ids of `GET /v1/provider/bookings` for a provider key (one page of 200).
pub(crate) async fn provider_list_ids(app: &TestApp, key: &str) -> BTreeSet<String> {
    let r = app
        .get("/v1/provider/bookings?limit=200", Some(key))
        .await
        .ok(200);
    let items = r["items"]
        .as_array()
        .unwrap_or_else(|| panic!("provider list without items: {r}"));
    assert!(
        r["next_cursor"].is_null(),
        "more than one page of provider bookings: {r}"
    );
    items.iter().map(|b| str_of(&b["id"])).collect()
}

/// Great-circle distance in km (mean Earth radius 6371 km).
pub(crate) fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let (dla, dlo) = (la2 - la1, (b.1 - a.1).to_radians());
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().asin()
}

/// `x` as f64 (panics with the value otherwise).
#[track_caller]
pub(crate) fn num(x: &Value) -> f64 {
    x.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {x}"))
}

/// Asserts `a ≈ b` within `tol` (wire numbers are rounded to 3 decimals).
#[track_caller]
pub(crate) fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: {a} is not within {tol} of {b}"
    );
}
