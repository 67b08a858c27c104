//! Firing a durable timer: the timer key is removed in the same batch as the transition it
//! causes, so a timer fires exactly once across crashes and restarts.

use super::bookings::{booking_key, next_route, reindex_provider};
use super::effects::{self, kind_of_byte, phase_of_byte};
use super::exec::{Done, Exec, Tx};
use crate::error::ApiError;
use store::keys;
use workflows::booking::{self, BookingCommand, BookingRecord, BookingState, RouteTrigger};
use workflows::effect::{TimerPhase, TimerSpec};
use workflows::sla::{SlaKind, SlaState};
use workflows::{BookingId, Timestamp};

fn noop() -> Exec<Done> {
    let mut done = Done::json(200, &serde_json::json!({ "fired": false }))?;
    done.audited = false;
    Ok(done)
}

pub(super) fn fire(tx: &mut Tx<'_, '_>, key: &[u8]) -> Exec<Done> {
    let Some((due, raw_id, kind_b, phase_b)) = keys::parse_timer(key) else {
        return Err(ApiError::internal("malformed timer key").into());
    };
    if kind_b == super::ops::CASE_ACK_KIND {
        if !tx.txn.contains(key)? {
            return noop();
        }
        tx.txn.delete(key.to_vec());
        return super::ops::ack_deadline(tx, workflows::CaseId(uuid::Uuid::from_bytes(raw_id)));
    }
    let (Some(kind), Some(phase)) = (kind_of_byte(kind_b), phase_of_byte(phase_b)) else {
        return Err(ApiError::internal("unknown timer kind").into());
    };
    if !tx.txn.contains(key)? {
        return noop(); // already fired, or cancelled after the loop read it
    }
    tx.txn.delete(key.to_vec());
    let id = BookingId(uuid::Uuid::from_bytes(raw_id));
    let Some(record): Option<BookingRecord> = tx.txn.get(&booking_key(id))? else {
        return noop();
    };
    let timer = TimerSpec {
        due: Timestamp(due as i64),
        kind,
        phase,
    };
    tx.ctx
        .metrics
        .timer_lateness_seconds
        .observe((tx.now.0 - timer.due.0).max(0) as f64 / 1000.0);
    let from = record.state();
    let reroutes = kind == SlaKind::Acceptance
        && phase == TimerPhase::Due
        && from == BookingState::PendingProvider
        && tx.ctx.sla.reroute_on_acceptance_breach;
    let next = if reroutes {
        Some(next_route(tx, &record, RouteTrigger::AcceptanceBreach)?)
    } else {
        None
    };
    let cmd = BookingCommand::TimerFired { timer, next };
    let Ok((after, fx)) = booking::apply(&record, &cmd, &tx.ctx.sla, tx.now) else {
        return noop();
    };
    let moved = sla_moves(&record, &after);
    for (k, state) in &moved {
        tx.ctx
            .metrics
            .sla_outcomes
            .with_label_values(&[k.as_str(), state.as_str()])
            .inc();
    }
    effects::apply(tx, &after, &fx)?;
    reindex_provider(tx, &record, &after);
    tx.txn.put(booking_key(id), &after)?;
    let action = match moved.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s) {
        Some(SlaState::AtRisk) => "sla.at_risk",
        Some(SlaState::Breached) => "sla.breached",
        _ => "timer.stale",
    };
    let mut done = Done::json(
        200,
        &serde_json::json!({
            "fired": true,
            "booking_id": id.to_string(),
            "kind": kind.as_str(),
            "phase": match phase { TimerPhase::AtRisk => "at_risk", TimerPhase::Due => "due" },
            "state": after.state().as_str(),
        }),
    )?
    .states(Some(from.as_str()), Some(after.state().as_str()));
    done.action = Some(action.into());
    done.reason = Some(format!(
        "{} SLA {} timer due {}",
        kind.as_str(),
        match phase {
            TimerPhase::AtRisk => "at-risk",
            TimerPhase::Due => "deadline",
        },
        crate::clock::rfc3339(timer.due)
    ));
    Ok(done)
}

/// SLA entries whose state changed between two versions of a booking (same order, maybe more).
pub(super) fn sla_moves(before: &BookingRecord, after: &BookingRecord) -> Vec<(SlaKind, SlaState)> {
    after
        .booking
        .sla
        .iter()
        .enumerate()
        .filter(|(i, e)| before.booking.sla.get(*i).map(|b| b.state) != Some(e.state))
        .map(|(_, e)| (e.kind, e.state))
        .collect()
}
