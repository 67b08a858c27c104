//! Writing a transition's effects into the batch, next to the new state.

use super::exec::{Exec, Tx};
use store::audit::Target;
use store::keys::{self, table};
use workflows::booking::{Booking, BookingRecord};
use workflows::case::ExceptionCase;
use workflows::effect::{CapacityMove, Effect, TimerPhase, TimerSpec};
use workflows::eligibility::{apply_move, MoveKind, Usage};
use workflows::sla::SlaKind;
use workflows::{CaseId, Date, EventType};

fn kind_byte(k: SlaKind) -> u8 {
    match k {
        SlaKind::Acceptance => 0,
        SlaKind::Fulfilment => 1,
        SlaKind::Report => 2,
    }
}

fn phase_byte(p: TimerPhase) -> u8 {
    match p {
        TimerPhase::AtRisk => 0,
        TimerPhase::Due => 1,
    }
}

pub(super) fn kind_of_byte(b: u8) -> Option<SlaKind> {
    match b {
        0 => Some(SlaKind::Acceptance),
        1 => Some(SlaKind::Fulfilment),
        2 => Some(SlaKind::Report),
        _ => None,
    }
}

pub(super) fn phase_of_byte(b: u8) -> Option<TimerPhase> {
    match b {
        0 => Some(TimerPhase::AtRisk),
        1 => Some(TimerPhase::Due),
        _ => None,
    }
}

/// The timer-index key of a booking's timer.
pub(super) fn timer_key(booking: &Booking, t: &TimerSpec) -> Vec<u8> {
    keys::timer(
        t.due.0.max(0) as u64,
        booking.id.as_bytes(),
        kind_byte(t.kind),
        phase_byte(t.phase),
    )
}

/// Applies `effects` of a transition of `record` (already in its new state).
pub(super) fn apply(tx: &mut Tx<'_, '_>, record: &BookingRecord, effects: &[Effect]) -> Exec<()> {
    let booking = &record.booking;
    for effect in effects {
        match effect {
            Effect::ArmTimer(t) => {
                tx.txn.put_raw(timer_key(booking, t), Vec::new());
                tx.ctx.metrics.timers_armed.inc();
                tx.ctx.timer_wake.armed(t.due.0);
            }
            Effect::CancelTimer(t) => tx.txn.delete(timer_key(booking, t)),
            Effect::Emit(event) => emit(tx, record, *event)?,
            Effect::OpenCase {
                case_type,
                provider_id,
                detail,
            } => {
                let case = ExceptionCase::open(
                    CaseId(uuid::Uuid::now_v7()),
                    *case_type,
                    booking.partner_id.clone(),
                    Some(booking.id),
                    provider_id.clone(),
                    detail.clone(),
                    tx.now,
                );
                store_case(tx, &case, true)?;
            }
            Effect::Entitlement {
                kind,
                benefit,
                count,
                amount,
            } => ledger_move(tx, booking, *kind, benefit, *count, *amount)?,
            Effect::Capacity {
                provider_id,
                movement,
            } => {
                let day = Date::india_of(booking.slot.start);
                let key = keys::capacity(provider_id.as_str(), day.0);
                let used: u32 = tx.txn.get(&key)?.unwrap_or(0);
                let next = match movement {
                    CapacityMove::Reserve => used.saturating_add(1),
                    CapacityMove::Release => used.saturating_sub(1),
                };
                tx.txn.put(key, &next)?;
            }
        }
    }
    Ok(())
}

/// Writes a new case: record, booking index, audit entry, acknowledgement timer, and (unless
/// the case is about webhooks themselves) an `exception.opened` event.
pub(super) fn store_case(tx: &mut Tx<'_, '_>, case: &ExceptionCase, notify: bool) -> Exec<()> {
    tx.txn
        .put(keys::one(table::CASE, case.id.as_bytes()), case)?;
    if let Some(b) = case.booking_id {
        tx.txn.put_raw(
            keys::compose(
                table::CASE_BY_BOOKING,
                &[],
                &[b.as_bytes().as_slice(), case.id.as_bytes()].concat(),
            ),
            Vec::new(),
        );
    }
    tx.audit_system(
        "exception.opened",
        Target {
            kind: "exception".into(),
            id: case.id.to_string(),
        },
        Some("open"),
        Some(format!(
            "{}{}: {}",
            case.case_type.as_str(),
            case.booking_id
                .map(|b| format!(" on booking {b}"))
                .unwrap_or_default(),
            case.detail
        )),
    )?;
    super::ops::arm_ack_timer(tx, case);
    count(tx, EventType::ExceptionOpened);
    if notify {
        super::webhooks::enqueue(
            tx,
            &case.partner_id,
            EventType::ExceptionOpened.as_str(),
            case.booking_id.map(|b| b.0).unwrap_or(case.id.0),
            case.booking_id.map(|b| b.0),
            |_: &mut Tx<'_, '_>| Ok(crate::views::case_view(case)),
        )?;
    }
    Ok(())
}

/// One entitlement ledger move, recorded with the booking that caused it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LedgerMove {
    pub at: workflows::Timestamp,
    pub booking_id: workflows::BookingId,
    pub member_id: workflows::MemberId,
    pub policy_id: workflows::PolicyId,
    pub year_start: Date,
    pub benefit: String,
    pub kind: MoveKind,
    pub count: u32,
    pub amount: workflows::Paise,
}

fn ledger_move(
    tx: &mut Tx<'_, '_>,
    booking: &Booking,
    kind: MoveKind,
    benefit: &str,
    count: u32,
    amount: workflows::Paise,
) -> Exec<()> {
    let l = &booking.ledger;
    let key = super::eligibility::ledger_key(&booking.partner_id, l, benefit);
    let mut usage: Usage = tx.txn.get(&key)?.unwrap_or_default();
    apply_move(&mut usage, kind, count, amount);
    tx.txn.put(key, &usage)?;
    let record = LedgerMove {
        at: tx.now,
        booking_id: booking.id,
        member_id: booking.member_id.clone(),
        policy_id: l.policy_id.clone(),
        year_start: l.year_start,
        benefit: benefit.to_owned(),
        kind,
        count,
        amount,
    };
    let id = uuid::Uuid::now_v7();
    tx.txn.put(
        keys::entitlement_move(
            booking.partner_id.as_str(),
            l.holder.as_str(),
            id.as_bytes(),
        ),
        &record,
    )?;
    Ok(())
}

fn count(tx: &Tx<'_, '_>, event: EventType) {
    tx.ctx
        .metrics
        .events
        .with_label_values(&[event.as_str()])
        .inc();
}

/// A booking event: counted, and written to the outbox for every endpoint that wants it, with
/// the booking as the partner sees it after the transition.
fn emit(tx: &mut Tx<'_, '_>, record: &BookingRecord, event: EventType) -> Exec<()> {
    count(tx, event);
    let b = &record.booking;
    let data = |tx: &mut Tx<'_, '_>| -> Exec<serde_json::Value> {
        let cases = cases_of(tx, b)?;
        Ok(
            serde_json::to_value(crate::views::booking_view(record, &cases))
                .map_err(crate::error::ApiError::internal)?,
        )
    };
    super::webhooks::enqueue(
        tx,
        &b.partner_id,
        event.as_str(),
        b.id.0,
        Some(b.id.0),
        data,
    )?;
    Ok(())
}

/// The cases opened about a booking.
pub(super) fn cases_of(tx: &Tx<'_, '_>, booking: &Booking) -> store::Result<Vec<ExceptionCase>> {
    crate::queries::cases_in(
        tx.txn
            .scan_prefix_raw(&keys::compose(
                table::CASE_BY_BOOKING,
                &[],
                booking.id.as_bytes(),
            ))?
            .into_iter()
            .map(|(k, _)| k),
        |key| tx.txn.get(key),
    )
}
