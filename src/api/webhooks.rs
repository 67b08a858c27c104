//! Partner webhook routes: endpoints, deliveries (with attempts), replay.

use super::extract::{
    json_ok, parse_json, parse_query, path_id, put_id, submit, Body, Caller, Meta,
};
use super::validate::Checks;
use super::AppState;
use crate::engine::{endpoint_view, Command};
use crate::error::ApiError;
use crate::webhooks::{self, Delivery, Endpoint};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::{EventType, PartnerId, Timestamp};

/// Endpoints one partner may have.
const ENDPOINTS_MAX: usize = 50;

#[derive(Deserialize, ToSchema)]
pub(crate) struct EndpointBody {
    url: String,
    /// Event types, or `["*"]` for all.
    events: Vec<String>,
    /// `whsec_<base64>`; generated and shown when absent on creation. Setting a new one
    /// rotates: the old one keeps signing beside it for 24 h.
    secret: Option<String>,
}

fn endpoint_id(raw: &str) -> Result<String, ApiError> {
    put_id(raw, PartnerId::parse).map(|p| p.to_string())
}

/// Create or replace a webhook endpoint of the calling partner.
#[utoipa::path(put, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "partner", request_body = EndpointBody,
    responses((status = 201, description = "created; `secret` shown once"), (status = 200, description = "replaced")))]
pub(crate) async fn put_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = endpoint_id(&raw_id)?;
    let dto: EndpointBody = parse_json(&body)?;
    let mut c = Checks::default();
    if let Some(problem) = webhooks::url_problem(&dto.url, &state.allow_http_hosts) {
        c.fail("url", problem);
    }
    c.check(
        dto.url.len() <= 2048,
        "url",
        "must be at most 2048 characters",
    );
    c.check(
        !dto.events.is_empty(),
        "events",
        "name at least one event type, or \"*\"",
    );
    c.check(
        dto.events.len() <= 50,
        "events",
        "must have at most 50 items",
    );
    for e in &dto.events {
        c.check(
            e == "*" || EventType::parse(e).is_some(),
            "events",
            "items are event types such as booking.created, or \"*\"",
        );
    }
    if let Some(s) = &dto.secret {
        c.check(
            webhooks::valid_secret(s),
            "secret",
            "must be whsec_ followed by base64 of 16 to 128 bytes",
        );
    }
    c.done()?;
    let existing = state
        .store
        .scan_prefix(&keys::scoped(
            table::WEBHOOK_ENDPOINT,
            partner_id.as_str(),
            &[],
        ))
        .count();
    let known = state
        .store
        .contains(&crate::engine_endpoint_key(&partner_id, &id))?;
    if !known && existing >= ENDPOINTS_MAX {
        return Err(ApiError::Unprocessable(
            "too_many_endpoints",
            format!("a partner may have at most {ENDPOINTS_MAX} endpoints"),
        ));
    }
    let endpoint = Endpoint {
        partner_id,
        id,
        url: dto.url,
        events: dto.events,
        secrets: Vec::new(),
        disabled: None,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    let command = Command::PutWebhookEndpoint {
        endpoint,
        secret: dto.secret,
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

/// One endpoint (its secret is never shown again).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "partner",
    responses((status = 200, description = "the endpoint"), (status = 404, description = "unknown")))]
pub(crate) async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = path_id(&raw_id, "webhook endpoint", PartnerId::parse)?;
    let ep: Endpoint = state
        .store
        .get(&crate::engine_endpoint_key(&partner_id, id.as_str()))?
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {raw_id}")))?;
    json_ok(&endpoint_view(&ep, crate::clock::now()))
}

/// Remove an endpoint; its undelivered deliveries end dead.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "partner",
    responses((status = 200, description = "deleted"), (status = 404, description = "unknown")))]
pub(crate) async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let id = path_id(&raw_id, "webhook endpoint", PartnerId::parse)?;
    let command = Command::DeleteWebhookEndpoint {
        partner: partner_id,
        id: id.to_string(),
    };
    Ok(submit(&state, caller.0, &meta, &[], command).await)
}

#[derive(Deserialize)]
struct DeliveryQuery {
    status: Option<String>,
    event: Option<String>,
    booking_id: Option<String>,
    limit: Option<usize>,
}

/// The calling partner's deliveries, newest first, with every attempt.
#[utoipa::path(get, path = "/v1/webhook-deliveries", tag = "partner",
    params(("status" = Option<String>, Query), ("event" = Option<String>, Query), ("booking_id" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{items}`")))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let q: DeliveryQuery = parse_query(raw.as_deref())?;
    let mut c = Checks::default();
    let limit = c.limit(q.limit, 100, 1000);
    if let Some(s) = &q.status {
        c.check(
            ["pending", "delivered", "dead"].contains(&s.as_str()),
            "status",
            "must be pending, delivered or dead",
        );
    }
    c.done()?;
    let store = &state.store;
    let mut items = Vec::new();
    let prefix = keys::scoped(table::DELIVERY_BY_PARTNER, partner_id.as_str(), &[]);
    for (scanned, item) in store.scan_prefix(&prefix).rev().enumerate() {
        if items.len() >= limit || scanned >= 20_000 {
            break;
        }
        let (k, _) = item.map_err(store::Error::from)?;
        let Some(raw_id) = keys::tail_uuid(&k) else {
            continue;
        };
        let Some(d): Option<Delivery> = store.get(&keys::one(table::DELIVERY, &raw_id))? else {
            continue;
        };
        let keep = q.status.as_deref().is_none_or(|s| d.status.as_str() == s)
            && q.event.as_deref().is_none_or(|e| d.event_type == e)
            && q.booking_id
                .as_deref()
                .is_none_or(|b| d.booking_id.is_some_and(|id| id.to_string() == b));
        if keep {
            items.push(d.view());
        }
    }
    json_ok(&serde_json::json!({ "items": items }))
}

/// Send one delivery again now.
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/replay", tag = "partner",
    responses((status = 202, description = "queued"), (status = 404, description = "unknown or another partner's")))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let delivery = uuid::Uuid::parse_str(&raw_id)
        .map_err(|_| ApiError::NotFound(format!("delivery {raw_id}")))?;
    let command = Command::ReplayDelivery {
        partner: partner_id,
        delivery,
    };
    Ok(submit(&state, caller.0, &meta, &[], command).await)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BulkReplayBody {
    /// Only `dead` deliveries are replayed in bulk.
    status: String,
    /// Only deliveries created at or after this time (RFC 3339).
    since: Option<String>,
}

/// Send every dead delivery (optionally since a time) again.
#[utoipa::path(post, path = "/v1/webhook-deliveries/replay", tag = "partner", request_body = BulkReplayBody,
    responses((status = 202, description = "`{replayed}`")))]
pub(crate) async fn replay_bulk(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let dto: BulkReplayBody = parse_json(&body)?;
    let mut c = Checks::default();
    c.check(
        dto.status == "dead",
        "status",
        "only dead deliveries are replayed in bulk",
    );
    let since = dto.since.as_deref().map(|s| c.time("since", s));
    c.done()?;
    let command = Command::ReplayDead {
        partner: partner_id,
        since,
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}
