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
use workflows::{MemberId, PartnerId, PolicyId, ServiceCode, Timestamp};

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
    /// Only in a roster row (the path names the member otherwise).
    #[serde(default)]
    #[schema(ignore)]
    member_id: Option<String>,
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

/// Validates a member's fields; `None` (with the failures in `c`) when any is wrong.
fn member_from(
    c: &mut Checks,
    partner_id: PartnerId,
    id: MemberId,
    dto: MemberBody,
) -> Option<Member> {
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
    let family_id = match dto.family_id.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => c.id("family_id", f, MemberId::parse),
        None => Some(id.clone()),
    };
    Some(Member {
        partner_id,
        id,
        policy_id: policy_id?,
        relationship: relationship?,
        dob,
        gender: dto.gender,
        pincode,
        name,
        phone: dto.phone,
        enrolled_on,
        family_id: family_id?,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    })
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
    let member = member_from(&mut c, partner_id, id, dto);
    c.done()?;
    let member = checked(member)?;
    Ok(submit(&state, caller.0, &meta, &body, Command::PutMember(member)).await)
}

/// A member of the calling partner.
#[utoipa::path(get, path = "/v1/members/{member_id}", tag = "partner",
    responses((status = 200, description = "the member"), (status = 404, description = "not this partner's")))]
pub(crate) async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
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
    super::extract::record_access(
        &state,
        &caller.0,
        &meta.request_id,
        &partner_id,
        vec![m.id.clone()],
        "GET /v1/members/{id}",
    )
    .await?;
    json_ok(&views::member_view(&m))
}

/// Roster rows per committed chunk (bounds one group commit).
const IMPORT_CHUNK: usize = 1_000;
/// Rows one upload may hold.
const IMPORT_ROWS_MAX: usize = 200_000;

/// Upserts a CSV roster: header row = line 1, columns = the member fields + `member_id`.
/// Every bad row is reported with its line and reason; good rows are kept.
#[utoipa::path(post, path = "/v1/members/import", tag = "partner",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "`{imported, rejected:[{line, code, message}]}`")))]
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let body = body.map_err(|rej| {
        if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(state.max_upload as u64)
        } else {
            ApiError::field("body", rej.body_text())
        }
    })?;
    let store = state.store.clone();
    let partner = partner_id.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_roster(&store, &partner, &body))
        .await
        .map_err(ApiError::internal)??;
    let (members, mut rejected) = parsed;
    let mut imported = 0u64;
    for chunk in members.chunks(IMPORT_CHUNK) {
        let reply = state
            .engine
            .submit(crate::engine::Request {
                principal: caller.0.clone(),
                request_id: meta.request_id.clone(),
                idempotency: None,
                command: Command::ImportMembers(chunk.iter().map(|(_, m)| m.clone()).collect()),
            })
            .await;
        if reply.status == 200 {
            imported += chunk.len() as u64;
        } else {
            let why = String::from_utf8_lossy(&reply.body).into_owned();
            rejected.extend(chunk.iter().map(|(line, _)| {
                serde_json::json!({
                    "line": line, "code": "internal", "message": why.clone(),
                })
            }));
        }
    }
    rejected.sort_by_key(|r| r["line"].as_u64());
    json_ok(&serde_json::json!({ "imported": imported, "rejected": rejected }))
}

type Roster = (Vec<(u64, Member)>, Vec<serde_json::Value>);

fn parse_roster(
    store: &store::Store,
    partner: &PartnerId,
    body: &[u8],
) -> Result<Roster, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::field("header", format!("line 1 is not a CSV header: {e}")))?
        .clone();
    for required in [
        "member_id",
        "policy_id",
        "relationship",
        "dob",
        "pincode",
        "name",
        "enrolled_on",
    ] {
        if !headers.iter().any(|h| h == required) {
            return Err(ApiError::field(
                "header",
                format!("line 1 has no `{required}` column"),
            ));
        }
    }
    let mut good: Vec<(u64, Member)> = Vec::new();
    let mut bad = Vec::new();
    let mut known_policies: std::collections::BTreeMap<String, bool> = Default::default();
    let reject = |bad: &mut Vec<serde_json::Value>, line: u64, code: &str, message: String| {
        bad.push(serde_json::json!({ "line": line, "code": code, "message": message }));
    };
    for (i, record) in reader.records().enumerate() {
        if i >= IMPORT_ROWS_MAX {
            return Err(ApiError::field(
                "body",
                format!("a roster holds at most {IMPORT_ROWS_MAX} rows"),
            ));
        }
        let line = i as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                reject(&mut bad, line, "invalid_row", e.to_string());
                continue;
            }
        };
        let row: MemberBody = match record.deserialize(Some(&headers)) {
            Ok(r) => r,
            Err(e) => {
                reject(&mut bad, line, "invalid_field", e.to_string());
                continue;
            }
        };
        let mut c = Checks::default();
        let id = c.id(
            "member_id",
            row.member_id.as_deref().unwrap_or(""),
            MemberId::parse,
        );
        let member = id.and_then(|id| member_from(&mut c, partner.clone(), id, row));
        if let Err(ApiError::InvalidField(msg, _)) = c.done() {
            reject(&mut bad, line, "invalid_field", msg);
            continue;
        }
        let Some(member) = member else {
            reject(
                &mut bad,
                line,
                "invalid_field",
                "the row is incomplete".into(),
            );
            continue;
        };
        let policy = member.policy_id.as_str().to_owned();
        let exists = match known_policies.get(&policy) {
            Some(e) => *e,
            None => {
                let e = store.contains(&keys::scoped(
                    table::POLICY,
                    partner.as_str(),
                    policy.as_bytes(),
                ))?;
                known_policies.insert(policy.clone(), e);
                e
            }
        };
        if !exists {
            reject(
                &mut bad,
                line,
                "unknown_policy",
                format!("policy {policy} does not exist"),
            );
            continue;
        }
        // A later row for the same member wins, as in any upsert.
        good.push((line, member));
    }
    Ok((good, bad))
}
