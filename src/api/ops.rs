//! Operator routes: exception cases (read) and the audit chain (query, export, verify).

use super::extract::{json_ok, parse_json, parse_query, path_id, submit, Body, Caller, Meta};
use super::validate::Checks;
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

use crate::engine::ops::{Approval, OpsAction};
use crate::engine::Command;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use store::audit::{self, AuditEntry};
use store::keys::{self, table};
use utoipa::ToSchema;
use workflows::case::{CaseCommand, ExceptionCase, Severity};
use workflows::Date;

/// Entries one query may examine, and page sizes.
const SCAN_MAX: usize = 20_000;
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1_000;
/// Bytes per chunk of a streamed export.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

fn operator(caller: &Caller) -> Result<(), ApiError> {
    match caller.0 {
        Principal::Operator(..) | Principal::Admin => Ok(()),
        _ => Err(ApiError::Forbidden(
            "this route needs an operator key".into(),
        )),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    target_id: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    from_seq: Option<u64>,
    limit: Option<usize>,
}

/// Audit entries, oldest first, filtered; `next_from_seq` continues the scan.
#[utoipa::path(get, path = "/v1/ops/audit", tag = "operator",
    params(("target_id" = Option<String>, Query), ("actor_id" = Option<String>, Query), ("action" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD (India day)"), ("to" = Option<String>, Query),
        ("from_seq" = Option<u64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{items, next_from_seq}`")))]
pub(crate) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let q: AuditQuery = parse_query(raw.as_deref())?;
    let mut c = Checks::default();
    let limit = c.limit(q.limit, PAGE_DEFAULT, PAGE_MAX);
    let from = q.from.as_deref().map(|d| c.date("from", d));
    let to = q.to.as_deref().map(|d| c.date("to", d));
    c.done()?;
    let from_seq = q.from_seq.unwrap_or(1).max(1);
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let keep = |e: &AuditEntry| {
            let day = crate::clock::parse_rfc3339(&e.at).map(Date::india_of);
            q.actor_id.as_deref().is_none_or(|a| e.actor.id == a)
                && q.action.as_deref().is_none_or(|a| e.action == a)
                && from.is_none_or(|f| day.is_some_and(|d| d >= f))
                && to.is_none_or(|t| day.is_some_and(|d| d <= t))
        };
        let mut items = Vec::new();
        let mut next = None;
        let seqs: Box<dyn Iterator<Item = store::Result<u64>>> = match &q.target_id {
            Some(t) => Box::new(
                audit::seqs_for_target(&store, t)?
                    .into_iter()
                    .filter(move |s| *s >= from_seq)
                    .map(Ok),
            ),
            None => Box::new((from_seq..).map(Ok)),
        };
        for (scanned, seq) in seqs.enumerate() {
            let seq = seq?;
            if items.len() == limit || scanned >= SCAN_MAX {
                next = Some(seq);
                break;
            }
            let Some(entry) = audit::get(&store, seq)? else {
                break;
            };
            if keep(&entry) {
                items.push(entry);
            }
        }
        Ok(serde_json::json!({ "items": items, "next_from_seq": next }))
    })
    .await
    .map_err(ApiError::internal)??;
    json_ok(&page)
}

/// The whole chain as JSON Lines, streamed: each line is exactly what was hashed plus `hash`.
#[utoipa::path(get, path = "/v1/ops/audit/export", tag = "operator",
    responses((status = 200, description = "application/x-ndjson, one entry per line")))]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024);
        for item in audit::iter_from(&store, 1) {
            match item {
                Ok(line) => {
                    chunk.extend_from_slice(&line);
                    chunk.push(b'\n');
                    if chunk.len() >= EXPORT_CHUNK_BYTES
                        && tx
                            .blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                            .is_err()
                    {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [("content-type", "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Recomputes every hash of the chain.
#[utoipa::path(get, path = "/v1/ops/audit/verify", tag = "operator",
    responses((status = 200, description = "`{ok, entries, head_hash}` or `{ok: false, broken_seq, reason}`")))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || audit::verify_store(&store))
        .await
        .map_err(ApiError::internal)??;
    json_ok(&report)
}

#[derive(Deserialize)]
struct CaseQuery {
    state: Option<String>,
    #[serde(rename = "type")]
    case_type: Option<String>,
    booking_id: Option<String>,
    limit: Option<usize>,
}

/// Exception cases, newest first, filtered by state, type or booking.
#[utoipa::path(get, path = "/v1/ops/exceptions", tag = "operator",
    params(("state" = Option<String>, Query), ("type" = Option<String>, Query), ("booking_id" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{items}`")))]
pub(crate) async fn cases(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let q: CaseQuery = parse_query(raw.as_deref())?;
    let mut c = Checks::default();
    let limit = c.limit(q.limit, PAGE_DEFAULT, PAGE_MAX);
    let booking = q.booking_id.as_deref().map(|b| {
        let id = workflows::BookingId::parse(b).ok();
        c.check(id.is_some(), "booking_id", "is not a booking id");
        id
    });
    c.done()?;
    let store = &state.store;
    let list: Vec<ExceptionCase> = match booking.flatten() {
        Some(id) => crate::queries::booking_cases(store, id)?,
        None => {
            let mut out = Vec::new();
            for (scanned, item) in store.scan_prefix(&[table::CASE]).rev().enumerate() {
                if scanned >= SCAN_MAX {
                    break;
                }
                let (_, v) = item.map_err(store::Error::from)?;
                out.push(store::codec::decode(&v)?);
            }
            out
        }
    };
    let items: Vec<serde_json::Value> = list
        .iter()
        .filter(|k| q.state.as_deref().is_none_or(|s| k.state.as_str() == s))
        .filter(|k| {
            q.case_type
                .as_deref()
                .is_none_or(|t| k.case_type.as_str() == t)
        })
        .take(limit)
        .map(crate::views::case_view)
        .collect();
    json_ok(&serde_json::json!({ "items": items }))
}

/// One exception case.
#[utoipa::path(get, path = "/v1/ops/exceptions/{id}", tag = "operator",
    responses((status = 200, description = "the case"), (status = 404, description = "unknown")))]
pub(crate) async fn case(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let id = path_id(&raw_id, "exception", workflows::CaseId::parse)?;
    let c: ExceptionCase = state
        .store
        .get(&keys::one(table::CASE, id.as_bytes()))?
        .ok_or_else(|| ApiError::NotFound(format!("exception {raw_id}")))?;
    json_ok(&crate::views::case_view(&c))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ReasonBody {
    reason: Option<String>,
}

/// A non-empty reason of at most 500 characters, else 422 `reason_required` / 400.
fn parse_reason(body: &[u8]) -> Result<String, ApiError> {
    let dto: ReasonBody = if body.is_empty() {
        ReasonBody { reason: None }
    } else {
        parse_json(body)?
    };
    super::validate::required_reason(dto.reason.as_deref())
}

async fn case_command(
    state: AppState,
    caller: Caller,
    meta: Meta,
    raw_id: String,
    body: bytes::Bytes,
    make: fn(String, String) -> CaseCommand,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let Principal::Operator(op, _) = &caller.0 else {
        return Err(ApiError::Forbidden(
            "this action needs an operator key".into(),
        ));
    };
    let id = path_id(&raw_id, "exception", workflows::CaseId::parse)?;
    let reason = parse_reason(&body)?;
    let command = Command::CaseAction {
        case: id,
        command: make(op.to_string(), reason),
    };
    Ok(submit(&state, caller.0.clone(), &meta, &body, command).await)
}

/// Acknowledge an exception case (stops its auto-escalation).
#[utoipa::path(post, path = "/v1/ops/exceptions/{id}/acknowledge", tag = "operator", request_body = ReasonBody,
    responses((status = 200, description = "the case"), (status = 422, description = "reason_required"), (status = 409, description = "invalid_transition")))]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    case_command(state, caller, meta, raw_id, body, |by, reason| {
        CaseCommand::Acknowledge { by, reason }
    })
    .await
}

/// Escalate an exception case.
#[utoipa::path(post, path = "/v1/ops/exceptions/{id}/escalate", tag = "operator", request_body = ReasonBody,
    responses((status = 200, description = "the case")))]
pub(crate) async fn escalate(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    case_command(state, caller, meta, raw_id, body, |by, reason| {
        CaseCommand::Escalate { by, reason }
    })
    .await
}

/// Resolve an exception case.
#[utoipa::path(post, path = "/v1/ops/exceptions/{id}/resolve", tag = "operator", request_body = ReasonBody,
    responses((status = 200, description = "the case")))]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    case_command(state, caller, meta, raw_id, body, |by, reason| {
        CaseCommand::Resolve { by, reason }
    })
    .await
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RaiseBody {
    booking_id: String,
    reason: Option<String>,
    /// `low`, `medium` or `high` (default low).
    severity: Option<String>,
}

/// Raise a `manual` exception case on a booking.
#[utoipa::path(post, path = "/v1/ops/exceptions", tag = "operator", request_body = RaiseBody,
    responses((status = 201, description = "the case")))]
pub(crate) async fn raise(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Body(body): Body,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let dto: RaiseBody = parse_json(&body)?;
    let reason = super::validate::required_reason(dto.reason.as_deref())?;
    let booking = workflows::BookingId::parse(&dto.booking_id)
        .map_err(|_| ApiError::field("booking_id", "is not a booking id"))?;
    let severity = match dto.severity.as_deref() {
        None => None,
        Some("low") => Some(Severity::Low),
        Some("medium") => Some(Severity::Medium),
        Some("high") => Some(Severity::High),
        Some(_) => return Err(ApiError::field("severity", "must be low, medium or high")),
    };
    let command = Command::RaiseCase {
        booking,
        reason,
        severity,
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ActionBody {
    /// `reassign`, `extend_sla`, `force_transition`, `cancel` or `waive_copay`.
    action: String,
    reason: Option<String>,
    /// reassign: a specific provider (else the next best).
    provider_id: Option<String>,
    /// extend_sla: e.g. `"30m"`.
    extend_by: Option<String>,
    /// force_transition: `completed`, `cancelled` or `no_show`.
    to_state: Option<String>,
}

/// A governed operator action on a booking. `waive_copay` and `force_transition` to
/// `completed` answer 202 with a pending approval for a second supervisor.
#[utoipa::path(post, path = "/v1/ops/bookings/{id}/actions", tag = "operator", request_body = ActionBody,
    responses((status = 200, description = "the booking after the action"), (status = 202, description = "`{approval_id, state: pending}`"),
    (status = 403, description = "the role may not"), (status = 422, description = "reason_required")))]
pub(crate) async fn booking_action(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let booking = path_id(&raw_id, "booking", workflows::BookingId::parse)?;
    let dto: ActionBody = parse_json(&body)?;
    let reason = super::validate::required_reason(dto.reason.as_deref())?;
    let mut c = Checks::default();
    let action = match dto.action.as_str() {
        "reassign" => Some(OpsAction::Reassign {
            provider_id: dto
                .provider_id
                .as_deref()
                .and_then(|p| c.id("provider_id", p, workflows::ProviderId::parse)),
        }),
        "extend_sla" => match dto.extend_by.as_deref() {
            Some(d) => Some(OpsAction::ExtendSla {
                by: c.duration("extend_by", d),
            }),
            None => {
                c.fail("extend_by", "extend_sla needs extend_by, e.g. \"30m\"");
                None
            }
        },
        "cancel" => Some(OpsAction::Cancel),
        "waive_copay" => Some(OpsAction::WaiveCopay),
        "force_transition" => match dto
            .to_state
            .as_deref()
            .and_then(workflows::booking::BookingState::parse)
        {
            Some(to) => Some(OpsAction::ForceTransition { to }),
            None => {
                c.fail(
                    "to_state",
                    "force_transition needs to_state: completed, cancelled or no_show",
                );
                None
            }
        },
        _ => {
            c.fail(
                "action",
                "must be reassign, extend_sla, force_transition, cancel or waive_copay",
            );
            None
        }
    };
    c.done()?;
    let action = super::validate::checked(action)?;
    let command = Command::OpsBookingAction {
        booking,
        action,
        reason,
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

async fn decide(
    state: AppState,
    caller: Caller,
    meta: Meta,
    raw_id: String,
    body: bytes::Bytes,
    approve: bool,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let approval = uuid::Uuid::parse_str(&raw_id)
        .map_err(|_| ApiError::NotFound(format!("approval {raw_id}")))?;
    let reason = parse_reason(&body)?;
    let command = Command::DecideApproval {
        approval,
        approve,
        reason,
    };
    Ok(submit(&state, caller.0, &meta, &body, command).await)
}

/// Approve a pending request (a supervisor other than the requester): the action is applied.
#[utoipa::path(post, path = "/v1/ops/approvals/{id}/approve", tag = "operator", request_body = ReasonBody,
    responses((status = 200, description = "the approval"), (status = 403, description = "four_eyes_required or not a supervisor")))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    decide(state, caller, meta, raw_id, body, true).await
}

/// Reject a pending request.
#[utoipa::path(post, path = "/v1/ops/approvals/{id}/reject", tag = "operator", request_body = ReasonBody,
    responses((status = 200, description = "the approval")))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(raw_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    decide(state, caller, meta, raw_id, body, false).await
}

/// Approval requests, newest first (`?state=pending`).
#[utoipa::path(get, path = "/v1/ops/approvals", tag = "operator",
    params(("state" = Option<String>, Query)), responses((status = 200, description = "`{items}`")))]
pub(crate) async fn approvals(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    #[derive(Deserialize)]
    struct Q {
        state: Option<String>,
    }
    let q: Q = parse_query(raw.as_deref())?;
    let mut items = Vec::new();
    for (scanned, item) in state
        .store
        .scan_prefix(&[table::APPROVAL])
        .rev()
        .enumerate()
    {
        if scanned >= SCAN_MAX {
            break;
        }
        let (_, v) = item.map_err(store::Error::from)?;
        let a: Approval = store::codec::decode(&v)?;
        if q.state.as_deref().is_none_or(|s| a.state.as_str() == s) {
            items.push(a.view());
        }
    }
    json_ok(&serde_json::json!({ "items": items }))
}

/// One booking, as operators see it.
#[utoipa::path(get, path = "/v1/ops/bookings/{id}", tag = "operator",
    responses((status = 200, description = "the booking"), (status = 404, description = "unknown")))]
pub(crate) async fn booking(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let record = super::bookings::visible_booking(&state.store, &caller.0, &raw_id)?;
    super::bookings::render(&state.store, &record)
}
