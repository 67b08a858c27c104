//! `POST /v1/eligibility` (a dry run of admission) and `GET /v1/members/{id}/entitlements`.

use super::bookings::{AddressBody, SlotBody};
use super::extract::{json_ok, parse_json, parse_query, path_id, Body, Caller};
use super::validate::{checked, Checks};
use super::AppState;
use crate::engine::eligibility::{self, Ask, Fault};
use crate::engine::LedgerMove;
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::booking::{Address, RouteTrigger, Slot};
use workflows::eligibility::benefit_key;
use workflows::policy::{Member, Policy};
use workflows::{Date, MemberId, ServiceCode, Timestamp};

#[derive(Deserialize, ToSchema)]
pub(crate) struct EligibilityBody {
    member_id: String,
    services: Vec<String>,
    /// Default: a one-hour slot starting now.
    slot: Option<SlotBody>,
    /// Default: the member's pincode.
    address: Option<AddressBody>,
    /// Accepted for symmetry with bookings; routing does not depend on it yet.
    #[allow(dead_code)]
    mode: Option<String>,
}

fn fault(f: Fault) -> ApiError {
    match f {
        Fault::Api(e) => e,
        Fault::Store(e) => e.into(),
    }
}

/// Would this booking be admitted, and what would it cost? Reserves nothing.
#[utoipa::path(post, path = "/v1/eligibility", tag = "partner", request_body = EligibilityBody,
    responses((status = 200, description = "`{eligible, reasons, covered_paise, copay_paise, gross_paise, provider_id, remaining}`")))]
pub(crate) async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let dto: EligibilityBody = parse_json(&body)?;
    let mut c = Checks::default();
    let member_id = c.id("member_id", &dto.member_id, MemberId::parse);
    c.check(
        !dto.services.is_empty(),
        "services",
        "must name at least one service",
    );
    c.check(
        dto.services.len() <= 50,
        "services",
        "must name at most 50 services",
    );
    let services: Vec<ServiceCode> = dto
        .services
        .iter()
        .filter_map(|s| c.id("services", s, ServiceCode::parse))
        .collect();
    let now = crate::clock::now();
    let slot = match &dto.slot {
        Some(s) => super::bookings::slot(&mut c, s),
        None => Slot {
            start: now,
            end: Timestamp(now.0 + 3_600_000),
        },
    };
    let address: Option<Address> = dto
        .address
        .as_ref()
        .map(|a| super::bookings::address(&mut c, a));
    c.done()?;
    let member_id = checked(member_id)?;
    let store = state.store.clone();
    let a = eligibility::assess(
        &store,
        &Ask {
            partner: &partner_id,
            member_id: &member_id,
            services: &services,
            slot,
            address: address.as_ref(),
            tried: &[],
            attempt: 1,
            trigger: RouteTrigger::Initial,
            now,
            holding: None,
            weights: state.weights,
            prefer: None,
        },
    )
    .map_err(fault)?;
    let v = &a.verdict;
    let remaining = match &a.policy {
        Some(p) => eligibility::remaining(p, &a.usage),
        None => serde_json::json!({}),
    };
    json_ok(&serde_json::json!({
        "eligible": v.eligible(),
        "reasons": v.reasons.iter().map(|r| serde_json::json!({"code": r.code.as_str(), "message": r.message})).collect::<Vec<_>>(),
        "provider_id": a.route.provider_id.as_ref().map(|p| p.as_str()),
        "gross_paise": v.gross().0,
        "covered_paise": v.covered().0,
        "copay_paise": v.copay().0,
        "currency": "INR",
        "lines": v.lines.iter().map(|l| serde_json::json!({"benefit": l.benefit, "gross_paise": l.gross.0, "covered_paise": l.covered.0, "copay_paise": l.copay.0})).collect::<Vec<_>>(),
        "policy_year": a.ledger.as_ref().zip(a.policy.as_ref()).map(|(l, p)| {
            let (from, to) = workflows::eligibility::policy_year(p, l.year_start);
            serde_json::json!({"from": from.to_string(), "to": to.to_string()})
        }),
        "remaining": remaining,
    }))
}

/// Limits, usage and every ledger move of a member's benefits in one policy year: the year
/// containing `on` (default today, India time), clamped to the policy's validity.
#[utoipa::path(get, path = "/v1/members/{member_id}/entitlements", tag = "partner",
    params(("on" = Option<String>, Query, description = "YYYY-MM-DD: which policy year (default today)")),
    responses((status = 200, description = "`{member_id, policy_id, policy_year, benefits, moves}`"), (status = 404, description = "not this partner's")))]
pub(crate) async fn entitlements(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    #[derive(Deserialize)]
    struct On {
        on: Option<String>,
    }
    let on: On = parse_query(query.as_deref())?;
    let mut c = Checks::default();
    let on = on.on.as_deref().map(|d| c.date("on", d));
    c.done()?;
    let id = path_id(&raw_id, "member", MemberId::parse)?;
    let store = &state.store;
    let member: Member = store
        .get(&keys::scoped(
            table::MEMBER,
            partner_id.as_str(),
            id.as_str().as_bytes(),
        ))?
        .ok_or_else(|| ApiError::NotFound(format!("member {id}")))?;
    let policy: Policy = store
        .get(&keys::scoped(
            table::POLICY,
            partner_id.as_str(),
            member.policy_id.as_str().as_bytes(),
        ))?
        .ok_or_else(|| ApiError::NotFound(format!("policy {}", member.policy_id)))?;
    let today = on.unwrap_or_else(|| Date::india_of(crate::clock::now()));
    let day = today.clamp(policy.valid_from, policy.valid_to);
    let ledger = eligibility::ledger_of(&member, &policy, day);
    let usage = eligibility::usage_of(store, &partner_id, &policy, &ledger)?;
    let (from, to) = workflows::eligibility::policy_year(&policy, day);
    let benefits: Vec<serde_json::Value> = policy
        .benefits
        .iter()
        .map(|b| {
            let key = benefit_key(b);
            let u = usage.get(&key).copied().unwrap_or_default();
            serde_json::json!({
                "benefit": key,
                "annual_count": b.annual_count,
                "count_used": u.count_used,
                "count_reserved": u.count_reserved,
                "count_remaining": u.count_remaining(b),
                "annual_limit_paise": b.annual_limit.map(|p| p.0),
                "amount_used_paise": u.amount_used.0,
                "amount_reserved_paise": u.amount_reserved.0,
                "amount_remaining_paise": u.amount_remaining(b).map(|p| p.0),
                "per_visit_cap_paise": b.per_visit_cap.map(|p| p.0),
                "copay_percent": b.copay_percent,
            })
        })
        .collect();
    let prefix = keys::compose(
        table::ENTITLEMENT_MOVE,
        &[
            partner_id.as_str().as_bytes(),
            ledger.holder.as_str().as_bytes(),
        ],
        &[],
    );
    let mut moves = Vec::new();
    for item in store.scan_prefix(&prefix) {
        let (_, v) = item.map_err(store::Error::from)?;
        let m: LedgerMove = store::codec::decode(&v)?;
        if m.year_start != ledger.year_start || m.policy_id != ledger.policy_id {
            continue;
        }
        moves.push(serde_json::json!({
            "at": crate::clock::rfc3339(m.at),
            "booking_id": m.booking_id.to_string(),
            "member_id": m.member_id.as_str(),
            "benefit": m.benefit,
            "kind": m.kind.as_str(),
            "count": m.count,
            "amount_paise": m.amount.0,
        }));
    }
    json_ok(&serde_json::json!({
        "member_id": member.id.as_str(),
        "policy_id": policy.id.as_str(),
        "holder": ledger.holder.as_str(),
        "floater": policy.floater,
        "policy_year": { "from": from.to_string(), "to": to.to_string() },
        "benefits": benefits,
        "moves": moves,
    }))
}
