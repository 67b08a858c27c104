//! Partner booking routes.

use super::extract::{json_ok, parse_json, parse_query, path_id, submit, Body, Caller, Meta};
use super::validate::{checked, Checks};
use super::AppState;
use crate::auth::Principal;
use crate::engine::{BookingAction, Command, NewBookingRequest};
use crate::error::ApiError;
use crate::queries;
use crate::views::{self, BookingView};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use store::keys::{self, table};
use store::Store;
use utoipa::ToSchema;
use workflows::booking::{Address, BookingRecord, BookingState, Mode, Slot};
use workflows::{BookingId, Date, MemberId, PartnerId, ServiceCode};

/// Services in one booking at most.
const SERVICES_MAX: usize = 50;
/// Page size bounds for lists.
const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 200;
/// Index entries one list request may examine (bounds the work of a filtered list).
const SCAN_MAX: usize = 5_000;

#[derive(Deserialize, ToSchema)]
pub(crate) struct SlotBody {
    start: String,
    end: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct AddressBody {
    pincode: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateBookingBody {
    member_id: String,
    services: Vec<String>,
    /// `home_collection`, `walk_in`, `teleconsult` or `delivery`.
    mode: String,
    slot: SlotBody,
    /// Default: the member's pincode.
    address: Option<AddressBody>,
    partner_ref: Option<String>,
}

pub(crate) fn slot(c: &mut Checks, s: &SlotBody) -> Slot {
    let start = c.time("slot.start", &s.start);
    let end = c.time("slot.end", &s.end);
    c.check(end > start, "slot.end", "must be after slot.start");
    Slot { start, end }
}

pub(crate) fn address(c: &mut Checks, a: &AddressBody) -> Address {
    let pincode = c.pincode("address.pincode", &a.pincode);
    if let Some(lat) = a.lat {
        c.check(
            lat.is_finite() && (-90.0..=90.0).contains(&lat),
            "address.lat",
            "must be between -90 and 90",
        );
    }
    if let Some(lon) = a.lon {
        c.check(
            lon.is_finite() && (-180.0..=180.0).contains(&lon),
            "address.lon",
            "must be between -180 and 180",
        );
    }
    c.check(
        a.lat.is_some() == a.lon.is_some(),
        "address",
        "give both lat and lon, or neither",
    );
    Address {
        pincode,
        lat: a.lat,
        lon: a.lon,
    }
}

/// Book services for a member: eligibility, routing and reservation in one durable step.
#[utoipa::path(post, path = "/v1/bookings", tag = "partner", request_body = CreateBookingBody,
    responses((status = 201, body = BookingView), (status = 422, description = "ineligible (with reasons) or unknown_service")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let dto: CreateBookingBody = parse_json(&body)?;
    let mut c = Checks::default();
    let member_id = c.id("member_id", &dto.member_id, MemberId::parse);
    c.check(
        !dto.services.is_empty(),
        "services",
        "must name at least one service",
    );
    c.check(
        dto.services.len() <= SERVICES_MAX,
        "services",
        "must name at most 50 services",
    );
    let mut services: Vec<ServiceCode> = Vec::new();
    for s in &dto.services {
        if let Some(code) = c.id("services", s, ServiceCode::parse) {
            if services.contains(&code) {
                c.fail("services", format!("{code} is listed twice"));
            } else {
                services.push(code);
            }
        }
    }
    let mode = Mode::parse(&dto.mode);
    c.check(
        mode.is_some(),
        "mode",
        "must be home_collection, walk_in, teleconsult or delivery",
    );
    let slot = slot(&mut c, &dto.slot);
    let address = dto.address.as_ref().map(|a| address(&mut c, a));
    let partner_ref = dto.partner_ref.as_ref().map(|r| {
        let ok =
            !r.is_empty() && r.len() <= 128 && !r.chars().any(|ch| ch.is_control() || ch == '\0');
        c.check(
            ok,
            "partner_ref",
            "must be 1 to 128 characters without control characters",
        );
        r.clone()
    });
    c.done()?;
    let request = NewBookingRequest {
        id: BookingId(uuid::Uuid::now_v7()),
        partner_id,
        member_id: checked(member_id)?,
        services,
        mode: checked(mode)?,
        slot,
        address,
        partner_ref,
    };
    Ok(submit(
        &state,
        caller.0,
        &meta,
        &body,
        Command::CreateBooking(request),
    )
    .await)
}

/// A booking the caller may see, else 404 (never 403, so ids do not leak across tenants).
pub(crate) fn visible_booking(
    store: &Store,
    principal: &Principal,
    raw_id: &str,
) -> Result<BookingRecord, ApiError> {
    let id = path_id(raw_id, "booking", BookingId::parse)?;
    let not_found = || ApiError::NotFound(format!("booking {raw_id}"));
    let record = queries::booking(store, id)?.ok_or_else(not_found)?;
    let visible = match principal {
        Principal::Partner(p) => &record.booking.partner_id == p,
        Principal::Provider(p) => record.booking.provider_id.as_ref() == Some(p),
        Principal::Admin | Principal::Operator(..) | Principal::System(_) => true,
    };
    if visible {
        Ok(record)
    } else {
        Err(not_found())
    }
}

/// The partner's (and operators') view of a booking.
pub(crate) fn partner_json(
    store: &Store,
    record: &BookingRecord,
) -> Result<serde_json::Value, ApiError> {
    let cases = queries::booking_cases(store, record.booking.id)?;
    serde_json::to_value(views::booking_view(record, &cases)).map_err(ApiError::internal)
}

/// The provider's minimised view of a booking (see `views::provider_booking_view`).
pub(crate) fn provider_json(
    store: &Store,
    record: &BookingRecord,
) -> Result<serde_json::Value, ApiError> {
    let member: Option<workflows::policy::Member> = store.get(&keys::scoped(
        table::MEMBER,
        record.booking.partner_id.as_str(),
        record.booking.member_id.as_str().as_bytes(),
    ))?;
    Ok(views::provider_booking_view(record, member.as_ref()))
}

pub(crate) fn render(store: &Store, record: &BookingRecord) -> Result<Response, ApiError> {
    json_ok(&partner_json(store, record)?)
}

/// One booking.
#[utoipa::path(get, path = "/v1/bookings/{id}", tag = "partner",
    responses((status = 200, body = BookingView), (status = 404, description = "unknown or another partner's")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.partner()?;
    let record = visible_booking(&state.store, &caller.0, &raw_id)?;
    render(&state.store, &record)
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    partner_ref: Option<String>,
    member_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Lists bookings from an index (newest first), filtered, one page at a time.
pub(crate) fn list_from_index(
    store: &Store,
    prefix: &[u8],
    q: &ListQuery,
    keep: impl Fn(&BookingRecord) -> bool,
    render: impl Fn(&BookingRecord) -> Result<serde_json::Value, ApiError>,
) -> Result<Response, ApiError> {
    let mut c = Checks::default();
    let limit = c.limit(q.limit, PAGE_DEFAULT, PAGE_MAX);
    let state = q.state.as_deref().map(|s| {
        let parsed = BookingState::parse(s);
        c.check(parsed.is_some(), "state", "is not a booking state");
        parsed
    });
    let from = q.from.as_deref().map(|d| c.date("from", d));
    let to = q.to.as_deref().map(|d| c.date("to", d));
    let cursor = q.cursor.as_deref().map(|s| {
        let parsed = BookingId::parse(s).ok();
        c.check(
            parsed.is_some(),
            "cursor",
            "is not a cursor from an earlier page",
        );
        parsed
    });
    c.done()?;
    let end = match cursor.flatten() {
        Some(id) => [prefix, id.as_bytes()].concat(),
        None => keys::prefix_end(prefix),
    };
    let mut items = Vec::new();
    let mut next_cursor = None;
    // The cursor is the last entry examined: the next page starts just below it.
    let mut last_examined: Option<BookingId> = None;
    for (scanned, entry) in store.range(prefix, &end).rev().enumerate() {
        if items.len() == limit || scanned >= SCAN_MAX {
            next_cursor = last_examined.map(|id| id.to_string());
            break;
        }
        let (k, _) = entry.map_err(store::Error::from)?;
        let Some(raw) = keys::tail_uuid(&k) else {
            continue;
        };
        let id = BookingId(uuid::Uuid::from_bytes(raw));
        last_examined = Some(id);
        let Some(record) = queries::booking(store, id)? else {
            continue;
        };
        let day = Date::india_of(record.booking.created_at);
        let wanted = state.flatten().is_none_or(|s| record.state() == s)
            && from.is_none_or(|f| day >= f)
            && to.is_none_or(|t| day <= t)
            && keep(&record);
        if wanted {
            items.push(render(&record)?);
        }
    }
    json_ok(&serde_json::json!({ "items": items, "next_cursor": next_cursor }))
}

/// The calling partner's bookings, newest first.
#[utoipa::path(get, path = "/v1/bookings", tag = "partner",
    params(("state" = Option<String>, Query), ("partner_ref" = Option<String>, Query), ("member_id" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD, India day of creation"), ("to" = Option<String>, Query),
        ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{items, next_cursor}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let partner_id: PartnerId = caller.partner()?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let p = partner_id.as_str().as_bytes();
    let prefix = match (&q.partner_ref, &q.member_id) {
        (Some(r), _) => keys::compose(table::BOOKING_BY_REF, &[p, r.as_bytes()], &[]),
        (None, Some(m)) => keys::compose(table::BOOKING_BY_MEMBER, &[p, m.as_bytes()], &[]),
        (None, None) => keys::compose(table::BOOKING_BY_PARTNER, &[p], &[]),
    };
    let member = q.member_id.clone();
    let store = &state.store;
    list_from_index(
        store,
        &prefix,
        &q,
        |r| {
            member
                .as_deref()
                .is_none_or(|m| r.booking.member_id.as_str() == m)
        },
        |r| partner_json(store, r),
    )
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CancelBody {
    reason: Option<String>,
}

/// Cancel a booking (from any active state).
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "partner", request_body = CancelBody,
    responses((status = 200, body = BookingView), (status = 409, description = "invalid_transition"), (status = 422, description = "reason_required")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.partner()?;
    let id = path_id(&raw_id, "booking", BookingId::parse)?;
    let dto: CancelBody = parse_json(&body)?;
    let reason = super::validate::required_reason(dto.reason.as_deref())?;
    let action = BookingAction::Cancel { reason };
    let command = Command::Booking { id, action };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RescheduleBody {
    slot: SlotBody,
}

/// Move a booking to another slot (before the service starts).
#[utoipa::path(post, path = "/v1/bookings/{id}/reschedule", tag = "partner", request_body = RescheduleBody,
    responses((status = 200, body = BookingView), (status = 409, description = "invalid_transition")))]
pub(crate) async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.partner()?;
    let id = path_id(&raw_id, "booking", BookingId::parse)?;
    let dto: RescheduleBody = parse_json(&body)?;
    let mut c = Checks::default();
    let slot = slot(&mut c, &dto.slot);
    c.done()?;
    let command = Command::Booking {
        id,
        action: BookingAction::Reschedule { slot },
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

/// Every routing decision of a booking, oldest first.
#[utoipa::path(get, path = "/v1/bookings/{id}/routing", tag = "partner",
    responses((status = 200, description = "`{items:[{attempt, provider_id, candidates, excluded}]}`")))]
pub(crate) async fn routing(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.partner()?;
    let record = visible_booking(&state.store, &caller.0, &raw_id)?;
    let items: Vec<_> = record
        .booking
        .routing
        .iter()
        .map(views::routing_view)
        .collect();
    json_ok(&serde_json::json!({ "booking_id": record.booking.id.to_string(), "items": items }))
}

/// The booking's audit entries, oldest first.
#[utoipa::path(get, path = "/v1/bookings/{id}/timeline", tag = "partner",
    responses((status = 200, description = "`{items:[audit entry]}`")))]
pub(crate) async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let partner_id = caller.partner()?;
    let record = visible_booking(&state.store, &caller.0, &raw_id)?;
    let mut items = Vec::new();
    for seq in store::audit::seqs_for_target(&state.store, &record.booking.id.to_string())? {
        if let Some(entry) = store::audit::get(&state.store, seq)? {
            // Another partner's refused probe of this id is not this partner's business.
            let foreign = entry.actor.kind == "partner" && entry.actor.id != partner_id.as_str();
            if !foreign {
                items.push(entry);
            }
        }
    }
    json_ok(&serde_json::json!({ "booking_id": record.booking.id.to_string(), "items": items }))
}
