//! Partner routes for policies and members.

use super::extract::{json_ok, parse_json, path_id, put_id, submit, Body, Caller, Meta};
use super::validate::{checked, Checks};
use super::AppState;
use crate::engine::Command;
use crate::error::ApiError;
use crate::views;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::network::ServiceCategory;
use workflows::policy::{Benefit, BenefitScope, Member, Policy, Relationship};
use workflows::{MemberId, PolicyId, ServiceCode, Timestamp};

#[derive(Deserialize, ToSchema)]
pub(crate) struct BenefitBody {
    category: Option<String>,
    service_code: Option<String>,
    annual_limit_paise: Option<i64>,
    annual_count: Option<u32>,
    per_visit_cap_paise: Option<i64>,
    #[serde(default)]
    copay_percent: u32,
    #[serde(default)]
    waiting_period_days: u32,
    /// Default: every relationship.
    relationships: Option<Vec<String>>,
    min_age: Option<u32>,
    max_age: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct PolicyBody {
    valid_from: String,
    valid_to: String,
    #[serde(default)]
    floater: bool,
    #[serde(default)]
    network_tiers: Vec<String>,
    #[serde(default)]
    benefits: Vec<BenefitBody>,
}

fn benefit(c: &mut Checks, i: usize, b: &BenefitBody) -> Option<Benefit> {
    let f = |name: &str| format!("benefits[{i}].{name}");
    let scope = match (&b.service_code, &b.category) {
        (Some(code), None) => c
            .id(&f("service_code"), code, ServiceCode::parse)
            .map(BenefitScope::Service),
        (None, Some(cat)) => {
            let parsed = ServiceCategory::parse(cat).map(BenefitScope::Category);
            c.check(
                parsed.is_some(),
                &f("category"),
                "must be lab, consultation or pharmacy",
            );
            parsed
        }
        _ => {
            c.fail(
                &f("category"),
                "give exactly one of category or service_code",
            );
            None
        }
    };
    c.check(
        b.copay_percent <= 100,
        &f("copay_percent"),
        "must be 0 to 100",
    );
    let relationships = match &b.relationships {
        None => vec![
            Relationship::SelfMember,
            Relationship::Spouse,
            Relationship::Child,
            Relationship::Parent,
        ],
        Some(list) => list
            .iter()
            .filter_map(|r| {
                let parsed = Relationship::parse(r);
                c.check(
                    parsed.is_some(),
                    &f("relationships"),
                    "items are self, spouse, child or parent",
                );
                parsed
            })
            .collect(),
    };
    if let (Some(lo), Some(hi)) = (b.min_age, b.max_age) {
        c.check(lo <= hi, &f("min_age"), "must not exceed max_age");
    }
    let annual_limit = b
        .annual_limit_paise
        .map(|p| c.paise(&f("annual_limit_paise"), p));
    let per_visit_cap = b
        .per_visit_cap_paise
        .map(|p| c.paise(&f("per_visit_cap_paise"), p));
    Some(Benefit {
        scope: scope?,
        annual_limit,
        annual_count: b.annual_count,
        per_visit_cap,
        copay_percent: b.copay_percent.min(100) as u8,
        waiting_period_days: b.waiting_period_days,
        relationships,
        min_age: b.min_age,
        max_age: b.max_age,
    })
}

/// Create or replace a policy of the calling partner.
#[utoipa::path(put, path = "/v1/policies/{policy_id}", tag = "partner",
    request_body = PolicyBody, responses((status = 201, description = "created"), (status = 200, description = "replaced")))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = put_id(&raw_id, PolicyId::parse)?;
    let dto: PolicyBody = parse_json(&body)?;
    let mut c = Checks::default();
    let valid_from = c.date("valid_from", &dto.valid_from);
    let valid_to = c.date("valid_to", &dto.valid_to);
    c.check(
        valid_from <= valid_to,
        "valid_to",
        "must not be before valid_from",
    );
    c.list_len("network_tiers", &dto.network_tiers);
    c.check(
        dto.benefits.len() <= 200,
        "benefits",
        "must have at most 200 benefits",
    );
    let benefits: Vec<Option<Benefit>> = dto
        .benefits
        .iter()
        .enumerate()
        .map(|(i, b)| benefit(&mut c, i, b))
        .collect();
    c.done()?;
    let policy = Policy {
        partner_id,
        id,
        valid_from,
        valid_to,
        floater: dto.floater,
        network_tiers: dto.network_tiers,
        benefits: benefits
            .into_iter()
            .map(checked)
            .collect::<Result<_, _>>()?,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    Ok(submit(&state, caller.0, &meta, &body, Command::PutPolicy(policy)).await)
}

/// A policy of the calling partner.
#[utoipa::path(get, path = "/v1/policies/{policy_id}", tag = "partner",
    responses((status = 200, description = "the policy"), (status = 404, description = "not this partner's")))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = path_id(&raw_id, "policy", PolicyId::parse)?;
    let p: Policy = state
        .store
        .get(&keys::scoped(
            table::POLICY,
            partner_id.as_str(),
            id.as_str().as_bytes(),
        ))?
        .ok_or_else(|| ApiError::NotFound(format!("policy {id}")))?;
    json_ok(&views::policy_view(&p))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct MemberBody {
    policy_id: String,
    /// `self`, `spouse`, `child` or `parent`.
    relationship: String,
    dob: String,
    #[serde(default)]
    gender: String,
    pincode: String,
    name: String,
    #[serde(default)]
    phone: String,
    enrolled_on: String,
    family_id: Option<String>,
}

/// Create or replace a member of the calling partner.
#[utoipa::path(put, path = "/v1/members/{member_id}", tag = "partner",
    request_body = MemberBody, responses((status = 201, description = "created"), (status = 200, description = "replaced"),
    (status = 422, description = "unknown_policy")))]
pub(crate) async fn put_member(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = put_id(&raw_id, MemberId::parse)?;
    let dto: MemberBody = parse_json(&body)?;
    let mut c = Checks::default();
    let policy_id = c.id("policy_id", &dto.policy_id, PolicyId::parse);
    let relationship = Relationship::parse(&dto.relationship);
    c.check(
        relationship.is_some(),
        "relationship",
        "must be self, spouse, child or parent",
    );
    let dob = c.date("dob", &dto.dob);
    let enrolled_on = c.date("enrolled_on", &dto.enrolled_on);
    let pincode = c.pincode("pincode", &dto.pincode);
    let name = c.text("name", &dto.name);
    c.check(
        dto.gender.chars().count() <= 32,
        "gender",
        "must be at most 32 characters",
    );
    c.check(
        dto.phone.chars().count() <= 32 && dto.phone.chars().all(|ch| !ch.is_control()),
        "phone",
        "must be at most 32 characters",
    );
    let family_id = match &dto.family_id {
        Some(f) => c.id("family_id", f, MemberId::parse),
        None => Some(id.clone()),
    };
    c.done()?;
    let member = Member {
        partner_id,
        id,
        policy_id: checked(policy_id)?,
        relationship: checked(relationship)?,
        dob,
        gender: dto.gender,
        pincode,
        name,
        phone: dto.phone,
        enrolled_on,
        family_id: checked(family_id)?,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    Ok(submit(&state, caller.0, &meta, &body, Command::PutMember(member)).await)
}

/// A member of the calling partner.
#[utoipa::path(get, path = "/v1/members/{member_id}", tag = "partner",
    responses((status = 200, description = "the member"), (status = 404, description = "not this partner's")))]
pub(crate) async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = path_id(&raw_id, "member", MemberId::parse)?;
    let m: Member = state
        .store
        .get(&keys::scoped(
            table::MEMBER,
            partner_id.as_str(),
            id.as_str().as_bytes(),
        ))?
        .ok_or_else(|| ApiError::NotFound(format!("member {id}")))?;
    json_ok(&views::member_view(&m))
}
