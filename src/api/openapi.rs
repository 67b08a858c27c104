//! `GET /openapi.json`, generated from the handlers' annotations and DTO types.

use super::{admin, bookings, eligibility, members, ops, provider, service, webhooks};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "DxStack API", version = "1", description = "Governed orchestration between partners and a provider network. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        service::healthz, service::readyz, service::metrics,
        admin::put_partner, admin::create_partner_key, admin::put_catalog, admin::put_provider,
        admin::get_provider, admin::list_providers, admin::create_provider_key,
        admin::put_operator, admin::create_operator_key, admin::run_job,
        members::put_policy, members::get_policy, members::put_member, members::get_member, members::import,
        eligibility::check, eligibility::entitlements,
        bookings::create, bookings::get_one, bookings::list, bookings::cancel,
        bookings::reschedule, bookings::routing, bookings::timeline,
        provider::list, provider::get_one, provider::event,
        webhooks::put_endpoint, webhooks::get_endpoint, webhooks::delete_endpoint,
        webhooks::list_deliveries, webhooks::replay, webhooks::replay_bulk,
        ops::cases, ops::case, ops::raise, ops::acknowledge, ops::escalate, ops::resolve,
        ops::booking, ops::booking_action, ops::approvals, ops::approve, ops::reject, ops::query, ops::export, ops::verify,
    ),
    tags((name = "admin"), (name = "partner"), (name = "provider"), (name = "operator"), (name = "service"))
)]
struct ApiDoc;

pub(crate) async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([("content-type", "application/json")], json).into_response(),
        Err(e) => crate::error::ApiError::internal(e).into_response(),
    }
}
