//! Booking commands: admission (`POST /v1/bookings`) and every later transition.

use super::eligibility::{self, Ask};
use super::exec::{Done, Exec, Fail, Tx};
use super::{effects, BookingAction, NewBookingRequest};
use crate::auth::Principal;
use crate::error::{ApiError, Reason};
use crate::views;
use store::keys::{self, table};
use workflows::booking::{
    self, BookingCommand, BookingRecord, NewBooking, RouteChoice, RouteTrigger,
};
use workflows::network::Provider;
use workflows::{BookingId, Date, Millis, ProviderId};

pub(super) fn booking_key(id: BookingId) -> Vec<u8> {
    keys::one(table::BOOKING, id.as_bytes())
}

/// Admits a booking: catalog → member → policy in force → route → rules and pricing →
/// reserve (capacity, entitlement) → persist. Ineligible: 422 with every reason, nothing kept.
pub(super) fn create(tx: &mut Tx<'_, '_>, req: &NewBookingRequest) -> Exec<Done> {
    let partner = req.partner_id.as_str();
    let a = eligibility::assess(
        tx.txn,
        &Ask {
            partner: &req.partner_id,
            member_id: &req.member_id,
            services: &req.services,
            slot: req.slot,
            address: req.address.as_ref(),
            tried: &[],
            attempt: 1,
            trigger: RouteTrigger::Initial,
            now: tx.now,
            holding: None,
            weights: tx.ctx.weights,
            prefer: None,
        },
    )?;
    if !a.verdict.eligible() {
        return Err(ApiError::Ineligible(
            a.verdict
                .reasons
                .iter()
                .map(|r| Reason {
                    code: r.code.as_str(),
                    message: r.message.clone(),
                })
                .collect(),
        )
        .into());
    }
    let (Some(member), Some(ledger)) = (a.member, a.ledger) else {
        return Err(ApiError::internal("an eligible booking has a member and a ledger").into());
    };
    let (route, address, report_tat) = (a.route, a.address, a.report_tat);
    let new = NewBooking {
        id: req.id,
        partner_id: req.partner_id.clone(),
        member_id: req.member_id.clone(),
        policy_id: member.policy_id.clone(),
        services: req.services.clone(),
        mode: req.mode,
        slot: req.slot,
        address,
        partner_ref: req.partner_ref.clone(),
        report_tat,
        ledger,
    };
    let (record, fx) = BookingRecord::admit(new, route, &tx.ctx.sla, tx.now)
        .map_err(|e| Fail::Api(ApiError::internal(e)))?;
    let b = &record.booking;
    effects::apply(tx, &record, &fx)?;
    tx.txn.put(booking_key(b.id), &record)?;
    let id = b.id.as_bytes();
    tx.txn.put_raw(
        keys::scoped(table::BOOKING_BY_PARTNER, partner, id),
        Vec::new(),
    );
    tx.txn.put_raw(
        keys::compose(
            table::BOOKING_BY_MEMBER,
            &[partner.as_bytes(), b.member_id.as_str().as_bytes()],
            id,
        ),
        Vec::new(),
    );
    if let Some(r) = &b.partner_ref {
        tx.txn.put_raw(
            keys::compose(
                table::BOOKING_BY_REF,
                &[partner.as_bytes(), r.as_bytes()],
                id,
            ),
            Vec::new(),
        );
    }
    if let Some(p) = &b.provider_id {
        tx.txn.put_raw(
            keys::scoped(table::BOOKING_BY_PROVIDER, p.as_str(), id),
            Vec::new(),
        );
    }
    let cases = effects::cases_of(tx, b)?;
    Ok(Done::json(201, &views::booking_view(&record, &cases))?
        .states(None, Some(record.state().as_str())))
}

/// Loads a booking the caller may act on; anyone else gets a 404, never a 403.
fn load_for(tx: &Tx<'_, '_>, id: BookingId) -> Exec<BookingRecord> {
    let record: Option<BookingRecord> = tx.txn.get(&booking_key(id))?;
    let visible = match (&record, &tx.req.principal) {
        (Some(r), Principal::Partner(p)) => &r.booking.partner_id == p,
        (Some(r), Principal::Provider(p)) => r.booking.provider_id.as_ref() == Some(p),
        (Some(_), Principal::Admin | Principal::Operator(..) | Principal::System(_)) => true,
        (None, _) => false,
    };
    match record {
        Some(r) if visible => Ok(r),
        _ => Err(ApiError::NotFound(format!("booking {id}")).into()),
    }
}

/// Whether this kind of caller may send this action at all.
fn allowed(principal: &Principal, action: &BookingAction) -> bool {
    let partner_action = matches!(
        action,
        BookingAction::Cancel { .. } | BookingAction::Reschedule { .. }
    );
    match principal {
        Principal::Partner(_) => partner_action,
        Principal::Provider(_) => !partner_action,
        Principal::Admin | Principal::Operator(..) | Principal::System(_) => true,
    }
}

/// The next routing decision for a booking leaving its provider, priced with the booking's
/// own reservation counted as available again.
pub(super) fn next_route(
    tx: &Tx<'_, '_>,
    record: &BookingRecord,
    trigger: RouteTrigger,
) -> Exec<RouteChoice> {
    next_route_to(tx, record, trigger, None)
}

/// As [`next_route`], choosing `prefer` when it is an eligible candidate.
pub(super) fn next_route_to(
    tx: &Tx<'_, '_>,
    record: &BookingRecord,
    trigger: RouteTrigger,
    prefer: Option<&ProviderId>,
) -> Exec<RouteChoice> {
    let b = &record.booking;
    let tried = b.tried();
    let a = eligibility::assess(
        tx.txn,
        &Ask {
            partner: &b.partner_id,
            member_id: &b.member_id,
            services: &b.services,
            slot: b.slot,
            address: Some(&b.address),
            tried: &tried,
            attempt: b.routing.len() as u32 + 1,
            trigger,
            now: tx.now,
            holding: Some(b),
            weights: tx.ctx.weights,
            prefer,
        },
    )?;
    Ok(a.route)
}

/// The current provider must be open at the new slot and, on a new India day, have capacity
/// left that day: a reschedule never overbooks a provider.
fn check_new_slot(
    tx: &Tx<'_, '_>,
    record: &BookingRecord,
    slot: workflows::booking::Slot,
) -> Exec<()> {
    let Some(pid) = &record.booking.provider_id else {
        return Ok(());
    };
    if record.state().is_terminal() {
        return Ok(()); // the machine refuses it with invalid_transition
    }
    let Some(p): Option<Provider> = tx
        .txn
        .get(&keys::one(table::PROVIDER, pid.as_str().as_bytes()))?
    else {
        return Ok(());
    };
    if !workflows::routing::open_at(&p, slot) {
        return Err(ApiError::Conflict(
            "provider_closed",
            format!("provider {pid} is not open for the whole new slot"),
        )
        .into());
    }
    let new_day = Date::india_of(slot.start);
    if new_day != Date::india_of(record.booking.slot.start)
        && super::routing::capacity_used(tx.txn, pid, new_day)? >= p.daily_capacity
    {
        return Err(ApiError::Conflict(
            "capacity_full",
            format!("provider {pid} has no capacity left on {new_day}"),
        )
        .into());
    }
    Ok(())
}

fn provider_grace(tx: &Tx<'_, '_>, provider: Option<&ProviderId>) -> Exec<Millis> {
    let Some(p) = provider else {
        return Ok(Millis(0));
    };
    let rec: Option<Provider> = tx
        .txn
        .get(&keys::one(table::PROVIDER, p.as_str().as_bytes()))?;
    Ok(rec.map(|p| p.fulfil_grace).unwrap_or_default())
}

/// Applies an action to an existing booking.
pub(super) fn act(tx: &mut Tx<'_, '_>, id: BookingId, action: &BookingAction) -> Exec<Done> {
    let record = load_for(tx, id)?;
    if !allowed(&tx.req.principal, action) {
        return Err(ApiError::Forbidden(format!(
            "`{}` is not an action this caller may take",
            action.name()
        ))
        .into());
    }
    let from = record.state();
    let cmd = match action {
        BookingAction::Cancel { reason } => BookingCommand::Cancel {
            reason: reason.clone(),
        },
        BookingAction::Reschedule { slot } => {
            check_new_slot(tx, &record, *slot)?;
            BookingCommand::Reschedule {
                slot: *slot,
                fulfil_grace: provider_grace(tx, record.booking.provider_id.as_ref())?,
            }
        }
        BookingAction::Accept => BookingCommand::Accept,
        BookingAction::Reject { reason } => {
            if from != workflows::booking::BookingState::PendingProvider {
                return Err(invalid(from.as_str(), "reject"));
            }
            BookingCommand::Reject {
                reason: reason.clone(),
                next: next_route(tx, &record, RouteTrigger::Rejected)?,
            }
        }
        BookingAction::SampleCollected => BookingCommand::SampleCollected,
        BookingAction::Started => BookingCommand::Started,
        BookingAction::ReportReady { report_url } => BookingCommand::ReportReady {
            report_url: report_url.clone(),
        },
        BookingAction::Completed { billed } => BookingCommand::Completed { billed: *billed },
        BookingAction::NoShow => BookingCommand::NoShow,
    };
    let next = commit_transition(tx, &record, &cmd)?;
    let reason = match action {
        BookingAction::Cancel { reason } => Some(reason.clone()),
        BookingAction::Reject { reason } => reason.clone(),
        _ => None,
    };
    let mut done = match &tx.req.principal {
        Principal::Provider(_) => {
            let member: Option<workflows::policy::Member> = tx.txn.get(&keys::scoped(
                table::MEMBER,
                next.booking.partner_id.as_str(),
                next.booking.member_id.as_str().as_bytes(),
            ))?;
            Done::json(200, &views::provider_booking_view(&next, member.as_ref()))?
        }
        _ => {
            let cases = effects::cases_of(tx, &next.booking)?;
            Done::json(200, &views::booking_view(&next, &cases))?
        }
    }
    .states(Some(from.as_str()), Some(next.state().as_str()));
    done.reason = reason;
    Ok(done)
}

/// Runs `cmd` on `record` and writes the result with all its effects: the one path every
/// booking transition takes (partner, provider, operator, approval, timer).
pub(super) fn commit_transition(
    tx: &mut Tx<'_, '_>,
    record: &BookingRecord,
    cmd: &BookingCommand,
) -> Exec<BookingRecord> {
    // A reschedule that moves the booking to another India day moves its capacity too.
    let old_day = Date::india_of(record.booking.slot.start);
    let (next, fx) = booking::apply(record, cmd, &tx.ctx.sla, tx.now).map_err(|e| match e {
        booking::Error::InvalidTransition { .. } => {
            Fail::Api(ApiError::InvalidTransition(e.to_string()))
        }
        booking::Error::NoRoute => Fail::Api(ApiError::internal(e)),
    })?;
    for (kind, state) in super::timers::sla_moves(record, &next) {
        tx.ctx
            .metrics
            .sla_outcomes
            .with_label_values(&[kind.as_str(), state.as_str()])
            .inc();
    }
    effects::apply(tx, &next, &fx)?;
    move_capacity_day(tx, record, &next, old_day)?;
    reindex_provider(tx, record, &next);
    tx.txn.put(booking_key(next.booking.id), &next)?;
    if next.state() == workflows::booking::BookingState::Completed && !record.state().is_terminal()
    {
        super::ops::clear_causes(tx, &next)?;
    }
    Ok(next)
}

fn invalid(from: &'static str, command: &'static str) -> Fail {
    Fail::Api(ApiError::InvalidTransition(
        booking::Error::InvalidTransition { from, command }.to_string(),
    ))
}

fn move_capacity_day(
    tx: &mut Tx<'_, '_>,
    before: &BookingRecord,
    after: &BookingRecord,
    old_day: Date,
) -> Exec<()> {
    let new_day = Date::india_of(after.booking.slot.start);
    let (Some(p), true) = (&after.booking.provider_id, new_day != old_day) else {
        return Ok(());
    };
    if before.booking.provider_id.as_ref() != Some(p) || after.state().is_terminal() {
        return Ok(());
    }
    let old_key = keys::capacity(p.as_str(), old_day.0);
    let new_key = keys::capacity(p.as_str(), new_day.0);
    let old_used: u32 = tx.txn.get(&old_key)?.unwrap_or(0);
    let new_used: u32 = tx.txn.get(&new_key)?.unwrap_or(0);
    tx.txn.put(old_key, &old_used.saturating_sub(1))?;
    tx.txn.put(new_key, &new_used.saturating_add(1))?;
    Ok(())
}

/// Keeps the provider → bookings index pointing at the current provider only.
pub(super) fn reindex_provider(tx: &mut Tx<'_, '_>, before: &BookingRecord, after: &BookingRecord) {
    let (old, new) = (&before.booking.provider_id, &after.booking.provider_id);
    if old == new {
        return;
    }
    let id = after.booking.id.as_bytes();
    if let Some(p) = old {
        tx.txn
            .delete(keys::scoped(table::BOOKING_BY_PROVIDER, p.as_str(), id));
    }
    if let Some(p) = new {
        tx.txn.put_raw(
            keys::scoped(table::BOOKING_BY_PROVIDER, p.as_str(), id),
            Vec::new(),
        );
    }
}
