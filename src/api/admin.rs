//! Admin routes: partners, the catalog, the provider network, operators, and their keys.

use super::extract::{
    json_ok, parse_json, parse_query, path_id, put_id, submit, Body, Caller, Meta,
};
use super::validate::{checked, Checks};
use super::AppState;
use crate::auth::{self, KeyOwner};
use crate::engine::Command;
use crate::error::ApiError;
use crate::views;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use std::collections::BTreeMap;
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::network::{
    Branding, CatalogService, GeoPoint, OpenRange, Operator, OperatorRole, Partner, Provider,
    ProviderKind, ServiceCategory, Sso,
};
use workflows::{OperatorId, PartnerId, ProviderId, ServiceCode, Timestamp};

#[derive(Deserialize, ToSchema)]
pub(crate) struct PartnerBody {
    name: String,
    #[serde(default)]
    branding: Option<BrandingBody>,
    #[serde(default)]
    sso: Option<SsoBody>,
}

#[derive(Deserialize, ToSchema, Default)]
pub(crate) struct BrandingBody {
    display_name: Option<String>,
    logo_url: Option<String>,
    primary_color: Option<String>,
    accent_color: Option<String>,
    domain: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
pub(crate) struct SsoBody {
    hs256_secret: Option<String>,
    rs256_public_key_pem: Option<String>,
    #[serde(default)]
    allowed_return_origins: Vec<String>,
}

/// Create or replace a partner.
#[utoipa::path(put, path = "/v1/admin/partners/{partner_id}", tag = "admin",
    request_body = PartnerBody, responses((status = 201, description = "created"), (status = 200, description = "replaced")))]
pub(crate) async fn put_partner(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let id = put_id(&raw_id, PartnerId::parse)?;
    let dto: PartnerBody = parse_json(&body)?;
    let mut c = Checks::default();
    let name = c.text("name", &dto.name);
    let b = dto.branding.unwrap_or_default();
    let s = dto.sso.unwrap_or_default();
    c.list_len("sso.allowed_return_origins", &s.allowed_return_origins);
    c.done()?;
    let partner = Partner {
        id,
        name,
        branding: Branding {
            display_name: b.display_name,
            logo_url: b.logo_url,
            primary_color: b.primary_color,
            accent_color: b.accent_color,
            domain: b.domain,
        },
        sso: Sso {
            hs256_secret: s.hs256_secret,
            rs256_public_key_pem: s.rs256_public_key_pem,
            allowed_return_origins: s.allowed_return_origins,
        },
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    Ok(submit(&state, caller.0, &meta, &body, Command::PutPartner(partner)).await)
}

async fn create_key(
    state: &AppState,
    caller: Caller,
    meta: Meta,
    body: &[u8],
    owner: KeyOwner,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let key_plain = auth::generate_key();
    let command = Command::CreateKey {
        owner,
        key_id: uuid::Uuid::now_v7().to_string(),
        key_hash: auth::hash_key(&key_plain),
        key_plain,
    };
    Ok(submit(state, caller.0, &meta, body, command).await)
}

/// Issue an API key for a partner (shown once).
#[utoipa::path(post, path = "/v1/admin/partners/{partner_id}/keys", tag = "admin",
    responses((status = 201, description = "`{key, key_id}`; the key is shown only here")))]
pub(crate) async fn create_partner_key(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = path_id(&raw_id, "partner", PartnerId::parse)?;
    create_key(&state, caller, meta, &body, KeyOwner::Partner(id)).await
}

/// Issue an API key for a provider (shown once).
#[utoipa::path(post, path = "/v1/admin/providers/{provider_id}/keys", tag = "admin",
    responses((status = 201, description = "`{key, key_id}`")))]
pub(crate) async fn create_provider_key(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = path_id(&raw_id, "provider", ProviderId::parse)?;
    create_key(&state, caller, meta, &body, KeyOwner::Provider(id)).await
}

/// Issue an API key for an operator (shown once).
#[utoipa::path(post, path = "/v1/admin/operators/{operator_id}/keys", tag = "admin",
    responses((status = 201, description = "`{key, key_id}`")))]
pub(crate) async fn create_operator_key(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = path_id(&raw_id, "operator", OperatorId::parse)?;
    create_key(&state, caller, meta, &body, KeyOwner::Operator(id)).await
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CatalogBody {
    name: String,
    /// `lab`, `consultation` or `pharmacy`.
    category: String,
    /// e.g. `"24h"`.
    report_tat: String,
}

/// Create or replace a catalog service.
#[utoipa::path(put, path = "/v1/admin/catalog/{service_code}", tag = "admin",
    request_body = CatalogBody, responses((status = 201, description = "created"), (status = 200, description = "replaced")))]
pub(crate) async fn put_catalog(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_code): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let code = put_id(&raw_code, ServiceCode::parse)?;
    let dto: CatalogBody = parse_json(&body)?;
    let mut c = Checks::default();
    let name = c.text("name", &dto.name);
    let category = ServiceCategory::parse(&dto.category);
    c.check(
        category.is_some(),
        "category",
        "must be lab, consultation or pharmacy",
    );
    let report_tat = c.duration("report_tat", &dto.report_tat);
    c.done()?;
    let service = CatalogService {
        code,
        name,
        category: checked(category)?,
        report_tat,
        updated_at: Timestamp(0),
    };
    Ok(submit(&state, caller.0, &meta, &body, Command::PutCatalog(service)).await)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct LocationBody {
    lat: f64,
    lon: f64,
    pincode: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RateBody {
    rate_paise: i64,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ProviderSlaBody {
    accept_within: String,
    fulfil_grace: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ProviderBody {
    name: String,
    /// `lab`, `clinic` or `pharmacy`.
    kind: String,
    network_tier: String,
    location: LocationBody,
    #[serde(default)]
    serviceable_pincodes: Vec<String>,
    #[serde(default)]
    radius_km: f64,
    services: BTreeMap<String, RateBody>,
    daily_capacity: u32,
    sla: ProviderSlaBody,
    #[serde(default)]
    quality_score: f64,
    #[serde(default = "default_true")]
    active: bool,
    /// India time; absent = always open; a day not listed = closed.
    #[serde(default)]
    open_hours: Option<BTreeMap<String, Vec<String>>>,
}

fn default_true() -> bool {
    true
}

/// `"07:00-19:00"` → minutes after midnight, `open < close ≤ 24:00`.
fn parse_range(s: &str) -> Option<OpenRange> {
    let (a, b) = s.trim().split_once('-')?;
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    };
    let (open_min, close_min) = (minutes(a)?, minutes(b)?);
    (open_min < close_min).then_some(OpenRange {
        open_min,
        close_min,
    })
}

fn parse_open_hours(c: &mut Checks, hours: &BTreeMap<String, Vec<String>>) -> [Vec<OpenRange>; 7] {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut week: [Vec<OpenRange>; 7] = Default::default();
    for (day, ranges) in hours {
        let Some(i) = DAYS.iter().position(|d| d == day) else {
            c.fail(
                &format!("open_hours.{day}"),
                "days are mon, tue, wed, thu, fri, sat, sun",
            );
            continue;
        };
        for r in ranges {
            match parse_range(r) {
                Some(range) => week[i].push(range),
                None => c.fail(
                    &format!("open_hours.{day}"),
                    format!("`{r}` is not a range like \"07:00-19:00\" within one day"),
                ),
            }
        }
    }
    week
}

/// Create or replace a provider of the network.
#[utoipa::path(put, path = "/v1/admin/providers/{provider_id}", tag = "admin",
    request_body = ProviderBody, responses((status = 201, description = "created"), (status = 200, description = "replaced")))]
pub(crate) async fn put_provider(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let id = put_id(&raw_id, ProviderId::parse)?;
    let dto: ProviderBody = parse_json(&body)?;
    let mut c = Checks::default();
    let name = c.text("name", &dto.name);
    let kind = ProviderKind::parse(&dto.kind);
    c.check(kind.is_some(), "kind", "must be lab, clinic or pharmacy");
    let network_tier = c.text("network_tier", &dto.network_tier);
    let loc = &dto.location;
    c.check(
        loc.lat.is_finite() && (-90.0..=90.0).contains(&loc.lat),
        "location.lat",
        "must be between -90 and 90",
    );
    c.check(
        loc.lon.is_finite() && (-180.0..=180.0).contains(&loc.lon),
        "location.lon",
        "must be between -180 and 180",
    );
    let pincode = c.pincode("location.pincode", &loc.pincode);
    c.list_len("serviceable_pincodes", &dto.serviceable_pincodes);
    let pincodes: Vec<String> = dto
        .serviceable_pincodes
        .iter()
        .map(|p| c.pincode("serviceable_pincodes", p))
        .collect();
    c.check(
        dto.radius_km.is_finite() && (0.0..=1000.0).contains(&dto.radius_km),
        "radius_km",
        "must be between 0 and 1000",
    );
    c.check(
        !dto.services.is_empty(),
        "services",
        "must offer at least one service",
    );
    c.check(
        dto.services.len() <= 1000,
        "services",
        "must have at most 1000 services",
    );
    let mut services = BTreeMap::new();
    for (code, rate) in &dto.services {
        let field = format!("services.{code}");
        if let Some(code) = c.id(&field, code, ServiceCode::parse) {
            let rate = c.paise(&format!("{field}.rate_paise"), rate.rate_paise);
            services.insert(code, rate);
        }
    }
    let accept_within = c.duration("sla.accept_within", &dto.sla.accept_within);
    let fulfil_grace = c.duration("sla.fulfil_grace", &dto.sla.fulfil_grace);
    c.check(
        dto.quality_score.is_finite() && dto.quality_score >= 0.0,
        "quality_score",
        "must be a non-negative number",
    );
    let open_hours = dto.open_hours.as_ref().map(|h| parse_open_hours(&mut c, h));
    c.done()?;
    let provider = Provider {
        id,
        name,
        kind: checked(kind)?,
        network_tier,
        location: GeoPoint {
            lat: loc.lat,
            lon: loc.lon,
        },
        pincode,
        serviceable_pincodes: pincodes,
        radius_km: dto.radius_km,
        services,
        daily_capacity: dto.daily_capacity,
        accept_within,
        fulfil_grace,
        quality_score: dto.quality_score,
        active: dto.active,
        open_hours,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    Ok(submit(
        &state,
        caller.0,
        &meta,
        &body,
        Command::PutProvider(provider),
    )
    .await)
}

/// One provider.
#[utoipa::path(get, path = "/v1/admin/providers/{provider_id}", tag = "admin",
    responses((status = 200, description = "the provider")))]
pub(crate) async fn get_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let id = path_id(&raw_id, "provider", ProviderId::parse)?;
    let p: Provider = state
        .store
        .get(&keys::one(table::PROVIDER, id.as_str().as_bytes()))?
        .ok_or_else(|| ApiError::NotFound(format!("provider {id}")))?;
    json_ok(&views::provider_view(&p))
}

#[derive(Deserialize)]
struct ProviderFilter {
    pincode: Option<String>,
    service: Option<String>,
    active: Option<bool>,
}

/// The network, filtered by pincode served, service offered and active flag.
#[utoipa::path(get, path = "/v1/admin/providers", tag = "admin",
    params(("pincode" = Option<String>, Query), ("service" = Option<String>, Query), ("active" = Option<bool>, Query)),
    responses((status = 200, description = "`{items}`")))]
pub(crate) async fn list_providers(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let f: ProviderFilter = parse_query(query.as_deref())?;
    let mut items = Vec::new();
    for item in state.store.scan_prefix(&[table::PROVIDER]) {
        let (_, v) = item.map_err(store::Error::from)?;
        let p: Provider = store::codec::decode(&v)?;
        let keep = f
            .pincode
            .as_ref()
            .is_none_or(|pc| p.serviceable_pincodes.contains(pc))
            && f.service
                .as_ref()
                .is_none_or(|s| p.services.keys().any(|k| k.as_str() == s))
            && f.active.is_none_or(|a| p.active == a);
        if keep {
            items.push(views::provider_view(&p));
        }
    }
    json_ok(&serde_json::json!({ "items": items }))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct OperatorBody {
    name: String,
    /// `agent` or `supervisor`.
    role: String,
}

/// Create or replace an operator.
#[utoipa::path(put, path = "/v1/admin/operators/{operator_id}", tag = "admin",
    request_body = OperatorBody, responses((status = 201, description = "created"), (status = 200, description = "replaced")))]
pub(crate) async fn put_operator(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let id = put_id(&raw_id, OperatorId::parse)?;
    let dto: OperatorBody = parse_json(&body)?;
    let mut c = Checks::default();
    let name = c.text("name", &dto.name);
    let role = OperatorRole::parse(&dto.role);
    c.check(role.is_some(), "role", "must be agent or supervisor");
    c.done()?;
    let operator = Operator {
        id,
        name,
        role: checked(role)?,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    Ok(submit(
        &state,
        caller.0,
        &meta,
        &body,
        Command::PutOperator(operator),
    )
    .await)
}

/// Run a scheduled job now and return its recorded run.
#[utoipa::path(post, path = "/v1/admin/jobs/{job}/run", tag = "admin",
    responses((status = 200, description = "`{job, slot, started_at, finished_at, outcome, result}`"),
    (status = 404, description = "no such job in this release")))]
pub(crate) async fn run_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    caller.admin()?;
    if !crate::cron::JOBS.iter().any(|(j, _)| *j == job) {
        return Err(ApiError::NotFound(format!("job {job}")));
    }
    let run = state
        .cron
        .run(&job, crate::clock::now(), true)
        .await?
        .ok_or_else(|| ApiError::Conflict("already_ran", format!("{job} is already running")))?;
    json_ok(&run.view())
}
