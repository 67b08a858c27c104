//! Provider routes: the bookings routed to the caller, and its lifecycle callbacks.

use super::bookings::{list_from_index, provider_json, visible_booking, ListQuery};
use super::extract::{parse_json, parse_query, path_id, submit, Body, Caller, Meta};
use super::validate::{Checks, TEXT_LEN_MAX};
use super::AppState;
use crate::engine::{BookingAction, Command};
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::BookingId;

/// The bookings currently routed to the calling provider, newest first.
#[utoipa::path(get, path = "/v1/provider/bookings", tag = "provider",
    params(("state" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{items, next_cursor}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let provider_id = caller.provider()?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let prefix = keys::compose(
        table::BOOKING_BY_PROVIDER,
        &[provider_id.as_str().as_bytes()],
        &[],
    );
    let store = &state.store;
    let shown = std::sync::Mutex::new(Vec::new());
    let resp = list_from_index(
        store,
        &prefix,
        &q,
        |r| r.booking.provider_id.as_ref() == Some(&provider_id),
        |r| {
            if shows_member(r) {
                if let Ok(mut v) = shown.lock() {
                    v.push((r.booking.partner_id.clone(), r.booking.member_id.clone()));
                }
            }
            provider_json(store, r)
        },
    )?;
    let shown = shown.into_inner().unwrap_or_default();
    let mut by_partner: std::collections::BTreeMap<workflows::PartnerId, Vec<workflows::MemberId>> =
        Default::default();
    for (p, m) in shown {
        by_partner.entry(p).or_default().push(m);
    }
    for (partner, members) in by_partner {
        super::extract::record_access(
            &state,
            &caller.0,
            &meta.request_id,
            &partner,
            members,
            "GET /v1/provider/bookings",
        )
        .await?;
    }
    Ok(resp)
}

/// One booking routed to the calling provider.
#[utoipa::path(get, path = "/v1/provider/bookings/{id}", tag = "provider",
    responses((status = 200, description = "the provider's view of the booking"), (status = 404, description = "not routed to this provider")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.provider()?;
    let record = visible_booking(&state.store, &caller.0, &raw_id)?;
    if shows_member(&record) {
        super::extract::record_access(
            &state,
            &caller.0,
            &meta.request_id,
            &record.booking.partner_id,
            vec![record.booking.member_id.clone()],
            "GET /v1/provider/bookings/{id}",
        )
        .await?;
    }
    super::extract::json_ok(&provider_json(&state.store, &record)?)
}

/// Whether the provider's view of this booking includes the member's personal data.
fn shows_member(r: &workflows::booking::BookingRecord) -> bool {
    r.booking.accepted_by_current_provider()
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct EventBody {
    /// `accept`, `reject`, `sample_collected`, `started`, `report_ready`, `completed`, `no_show`.
    #[serde(rename = "type")]
    kind: String,
    /// When it happened at the provider (RFC 3339); recorded, the server's clock decides SLAs.
    at: Option<String>,
    reason: Option<String>,
    report_url: Option<String>,
    billed_paise: Option<i64>,
}

/// A lifecycle callback from the provider the booking is routed to.
#[utoipa::path(post, path = "/v1/provider/bookings/{id}/events", tag = "provider", request_body = EventBody,
    responses((status = 200, description = "the provider's view of the booking"), (status = 409, description = "invalid_transition"),
    (status = 404, description = "not routed to this provider")))]
pub(crate) async fn event(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.provider()?;
    let id = path_id(&raw_id, "booking", BookingId::parse)?;
    let dto: EventBody = parse_json(&body)?;
    let mut c = Checks::default();
    if let Some(at) = &dto.at {
        c.time("at", at);
    }
    let reason = dto
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let Some(r) = reason {
        c.check(
            r.chars().count() <= TEXT_LEN_MAX,
            "reason",
            "must be at most 500 characters",
        );
    }
    if let Some(url) = &dto.report_url {
        c.check(
            url.len() <= 2048 && (url.starts_with("https://") || url.starts_with("http://")),
            "report_url",
            "must be an http(s) URL of at most 2048 characters",
        );
    }
    let billed = dto.billed_paise.map(|p| c.paise("billed_paise", p));
    let action = match dto.kind.as_str() {
        "accept" => Some(BookingAction::Accept),
        "reject" => Some(BookingAction::Reject {
            reason: reason.map(str::to_owned),
        }),
        "sample_collected" => Some(BookingAction::SampleCollected),
        "started" => Some(BookingAction::Started),
        "report_ready" => Some(BookingAction::ReportReady {
            report_url: dto.report_url.clone(),
        }),
        "completed" => Some(BookingAction::Completed { billed }),
        "no_show" => Some(BookingAction::NoShow),
        _ => {
            c.fail(
                "type",
                "must be accept, reject, sample_collected, started, report_ready, completed or no_show",
            );
            None
        }
    };
    c.done()?;
    let Some(action) = action else {
        return Err(ApiError::field("type", "unknown event type"));
    };
    Ok(submit(
        &state,
        caller.0,
        &meta,
        &body,
        Command::Booking { id, action },
    )
    .await)
}
