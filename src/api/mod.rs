//! The HTTP façade (axum): authentication, request ids, problem+json, and the routes.
//!
//! Handlers parse and validate (turning DTOs into domain values), then either read the store
//! directly (GET) or submit a command to the committer and return its durable reply.

mod admin;
mod bookings;
mod eligibility;
mod extract;
mod members;
mod openapi;
mod ops;
mod provider;
pub mod ratelimit;
mod service;
mod validate;
mod webhooks;

use crate::engine::Handle;
use crate::error::ApiError;
use crate::metrics::Metrics;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store::Store;
use tracing::Instrument;

pub use extract::REQUEST_ID;

/// Builds the per-key rate limiter from `[limits]`.
pub fn rate_limiter(per_second: u32, burst: u32) -> Arc<ratelimit::RateLimiter> {
    Arc::new(ratelimit::RateLimiter::new(per_second, burst))
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: Handle,
    pub metrics: Arc<Metrics>,
    pub cron: crate::cron::CronRunner,
    pub admin_token: Arc<String>,
    pub max_body: usize,
    /// CSV and JSON Lines uploads.
    pub max_upload: usize,
    pub weights: workflows::routing::Weights,
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// `[webhooks] allow_http_hosts`.
    pub allow_http_hosts: Arc<Vec<String>>,
    /// False while starting and once shutdown began; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

pub fn router(state: AppState) -> Router {
    let max_body = state.max_body;
    let max_upload = state.max_upload;
    Router::new()
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/v1/admin/partners/{id}", put(admin::put_partner))
        .route(
            "/v1/admin/partners/{id}/keys",
            post(admin::create_partner_key),
        )
        .route("/v1/admin/catalog/{code}", put(admin::put_catalog))
        .route("/v1/admin/providers", get(admin::list_providers))
        .route(
            "/v1/admin/providers/{id}",
            put(admin::put_provider).get(admin::get_provider),
        )
        .route(
            "/v1/admin/providers/{id}/keys",
            post(admin::create_provider_key),
        )
        .route("/v1/admin/operators/{id}", put(admin::put_operator))
        .route(
            "/v1/admin/operators/{id}/keys",
            post(admin::create_operator_key),
        )
        .route("/v1/admin/jobs/{job}/run", post(admin::run_job))
        .route(
            "/v1/policies/{id}",
            put(members::put_policy).get(members::get_policy),
        )
        .route(
            "/v1/members/import",
            post(members::import).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/v1/members/{id}",
            put(members::put_member).get(members::get_member),
        )
        .route("/v1/eligibility", post(eligibility::check))
        .route(
            "/v1/members/{id}/entitlements",
            get(eligibility::entitlements),
        )
        .route("/v1/bookings", post(bookings::create).get(bookings::list))
        .route("/v1/bookings/{id}", get(bookings::get_one))
        .route("/v1/bookings/{id}/cancel", post(bookings::cancel))
        .route("/v1/bookings/{id}/reschedule", post(bookings::reschedule))
        .route("/v1/bookings/{id}/routing", get(bookings::routing))
        .route("/v1/bookings/{id}/timeline", get(bookings::timeline))
        .route("/v1/provider/bookings", get(provider::list))
        .route("/v1/provider/bookings/{id}", get(provider::get_one))
        .route("/v1/provider/bookings/{id}/events", post(provider::event))
        .route(
            "/v1/webhook-endpoints/{id}",
            put(webhooks::put_endpoint)
                .get(webhooks::get_endpoint)
                .delete(webhooks::delete_endpoint),
        )
        .route("/v1/webhook-deliveries", get(webhooks::list_deliveries))
        .route("/v1/webhook-deliveries/replay", post(webhooks::replay_bulk))
        .route("/v1/webhook-deliveries/{id}/replay", post(webhooks::replay))
        .route("/v1/ops/exceptions", get(ops::cases).post(ops::raise))
        .route("/v1/ops/exceptions/{id}", get(ops::case))
        .route(
            "/v1/ops/exceptions/{id}/acknowledge",
            post(ops::acknowledge),
        )
        .route("/v1/ops/exceptions/{id}/escalate", post(ops::escalate))
        .route("/v1/ops/exceptions/{id}/resolve", post(ops::resolve))
        .route("/v1/ops/bookings/{id}", get(ops::booking))
        .route("/v1/ops/bookings/{id}/actions", post(ops::booking_action))
        .route("/v1/ops/approvals", get(ops::approvals))
        .route("/v1/ops/approvals/{id}/approve", post(ops::approve))
        .route("/v1/ops/approvals/{id}/reject", post(ops::reject))
        .route("/v1/ops/audit", get(ops::query))
        .route("/v1/ops/audit/export", get(ops::export))
        .route("/v1/ops/audit/verify", get(ops::verify))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Gives every request an id (the client's `x-request-id` if sane, else a UUIDv7), a tracing
/// span carrying it, and echoes it back.
async fn request_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(extract::RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let started = std::time::Instant::now();
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let status = resp.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "done"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let class = match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state
        .metrics
        .http_requests
        .with_label_values(&[class])
        .inc();
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let request_id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [("content-type", "application/problem+json")],
            self.to_problem(&request_id),
        )
            .into_response()
    }
}
