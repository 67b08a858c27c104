//! Operator routes: exception cases (read) and the audit chain (query, export, verify).

use super::extract::{json_ok, parse_query, path_id, Caller};
use super::validate::Checks;
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use store::audit::{self, AuditEntry};
use store::keys::{self, table};
use workflows::case::ExceptionCase;
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
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    c.check(
        (1..=PAGE_MAX).contains(&limit),
        "limit",
        "must be 1 to 1000",
    );
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
        Body::from_stream(stream),
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
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    c.check(
        (1..=PAGE_MAX).contains(&limit),
        "limit",
        "must be 1 to 1000",
    );
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
