//! The booking lifecycle as a `statig` state machine.
//!
//! | from               | command                         | to                                  |
//! |--------------------|---------------------------------|-------------------------------------|
//! | pending_provider   | accept                          | confirmed                           |
//! | pending_provider   | reject / reassign / acceptance breach (re-route on) | pending_provider (next provider) or failed |
//! | pending_provider   | reschedule                      | pending_provider                    |
//! | confirmed          | sample_collected / started      | in_progress                         |
//! | confirmed          | reschedule                      | confirmed (fulfilment SLA re-armed) |
//! | confirmed          | reassign                        | pending_provider (next) or failed   |
//! | in_progress        | report_ready                    | in_progress (report recorded)       |
//! | in_progress        | completed                       | completed                           |
//! | any active         | cancel                          | cancelled                           |
//! | any active         | no_show                         | no_show                             |
//! | any state          | timer fired                     | same state; the SLA entry moves (a stale timer is a no-op) |
//! | completed, cancelled, no_show, failed | anything else | rejected: `invalid_transition`   |
//!
//! Every accepted command bumps `version` and `updated_at`. A rejected command changes nothing:
//! [`apply`] works on a copy and returns it only on success.

use super::model::{Amounts, Booking, BookingState, CoverState, NewBooking, RouteChoice, Slot};
use crate::effect::{CapacityMove, CaseType, Effect, EventType, TimerPhase, TimerSpec};
use crate::eligibility::{consumption, CoverLine, MoveKind};
use crate::money::Paise;
use crate::sla::{SlaEntry, SlaKind, SlaState};
use crate::time::{Millis, Timestamp};
use serde::{Deserialize, Serialize};
use statig::prelude::*;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("`{command}` is not allowed while the booking is {from}")]
    InvalidTransition {
        from: &'static str,
        command: &'static str,
    },
    #[error("the booking has no routable provider")]
    NoRoute,
}

/// SLA settings the machine needs (from `[sla]` config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlaRules {
    pub at_risk_ratio: f64,
    pub reroute_on_acceptance_breach: bool,
}

impl Default for SlaRules {
    fn default() -> Self {
        SlaRules {
            at_risk_ratio: 0.8,
            reroute_on_acceptance_breach: true,
        }
    }
}

/// A command addressed to one booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BookingCommand {
    Accept,
    /// The provider declines; `next` is the engine's next routing decision.
    Reject {
        reason: Option<String>,
        next: RouteChoice,
    },
    SampleCollected,
    Started,
    ReportReady {
        report_url: Option<String>,
    },
    Completed {
        billed: Option<Paise>,
    },
    NoShow,
    Cancel {
        reason: String,
    },
    /// New slot; `fulfil_grace` is the current provider's grace for the re-armed fulfilment SLA.
    Reschedule {
        slot: Slot,
        fulfil_grace: Millis,
    },
    /// An operator moves the booking to another provider.
    Reassign {
        next: RouteChoice,
    },
    /// A durable timer fired. `next` is supplied for acceptance breaches that re-route.
    TimerFired {
        timer: TimerSpec,
        next: Option<RouteChoice>,
    },
    /// An operator gives the provider more time: every open SLA moves `by` later.
    ExtendSla {
        by: Millis,
    },
    /// A supervisor-approved waiver: `extra` more covered per benefit (the copay shrinks by
    /// as much; the engine caps it by what the benefit has left).
    WaiveCopay {
        extra: Vec<(String, Paise)>,
    },
    /// A supervisor moves the booking to `completed`, `cancelled` or `no_show`.
    ForceTransition {
        to: BookingState,
        reason: String,
    },
}

impl BookingCommand {
    pub fn name(&self) -> &'static str {
        match self {
            BookingCommand::Accept => "accept",
            BookingCommand::Reject { .. } => "reject",
            BookingCommand::SampleCollected => "sample_collected",
            BookingCommand::Started => "started",
            BookingCommand::ReportReady { .. } => "report_ready",
            BookingCommand::Completed { .. } => "completed",
            BookingCommand::NoShow => "no_show",
            BookingCommand::Cancel { .. } => "cancel",
            BookingCommand::Reschedule { .. } => "reschedule",
            BookingCommand::Reassign { .. } => "reassign",
            BookingCommand::TimerFired { .. } => "timer_fired",
            BookingCommand::ExtendSla { .. } => "extend_sla",
            BookingCommand::WaiveCopay { .. } => "waive_copay",
            BookingCommand::ForceTransition { .. } => "force_transition",
        }
    }
}

/// A booking as persisted: its data plus its `statig` lifecycle state.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingRecord {
    pub booking: Booking,
    machine: StateMachine<Flow>,
}

impl std::fmt::Debug for BookingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BookingRecord")
            .field("state", &self.state())
            .field("booking", &self.booking)
            .finish()
    }
}

impl BookingRecord {
    /// Admits a new booking routed by `route` (which must name a provider).
    pub fn admit(
        new: NewBooking,
        route: RouteChoice,
        rules: &SlaRules,
        now: Timestamp,
    ) -> Result<(BookingRecord, Vec<Effect>), Error> {
        let (Some(provider_id), Some(terms)) = (route.provider_id.clone(), route.terms.clone())
        else {
            return Err(Error::NoRoute);
        };
        let mut booking = Booking {
            id: new.id,
            partner_id: new.partner_id,
            member_id: new.member_id,
            policy_id: new.policy_id,
            services: new.services,
            mode: new.mode,
            slot: new.slot,
            address: new.address,
            partner_ref: new.partner_ref,
            report_tat: new.report_tat,
            provider_id: Some(provider_id.clone()),
            routing: vec![route],
            amounts: terms.amounts,
            ledger: new.ledger,
            cover: terms.cover.clone(),
            cover_state: CoverState::Reserved,
            sla: Vec::new(),
            report_url: None,
            billed: None,
            cancel_reason: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut effects = vec![Effect::Capacity {
            provider_id,
            movement: CapacityMove::Reserve,
        }];
        effects.extend(cover_moves(&terms.cover, MoveKind::Reserve));
        let entry = SlaEntry::open(
            SlaKind::Acceptance,
            now,
            now.plus(terms.accept_within),
            rules.at_risk_ratio,
        );
        effects.extend(entry.timers().map(Effect::ArmTimer));
        booking.sla.push(entry);
        effects.push(Effect::Emit(EventType::BookingCreated));
        let record = BookingRecord {
            booking,
            machine: Flow.state_machine(),
        };
        Ok((record, effects))
    }

    pub fn state(&self) -> BookingState {
        match self.machine.state() {
            State::PendingProvider {} => BookingState::PendingProvider,
            State::Confirmed {} => BookingState::Confirmed,
            State::InProgress {} => BookingState::InProgress,
            State::Completed {} => BookingState::Completed,
            State::Cancelled {} => BookingState::Cancelled,
            State::NoShow {} => BookingState::NoShow,
            State::Failed {} => BookingState::Failed,
        }
    }
}

/// Applies `cmd` to a copy of `record`. On success returns the new record and its effects;
/// on refusal the original is untouched.
pub fn apply(
    record: &BookingRecord,
    cmd: &BookingCommand,
    rules: &SlaRules,
    now: Timestamp,
) -> Result<(BookingRecord, Vec<Effect>), Error> {
    let mut booking = record.booking.clone();
    let mut machine = record.machine.clone();
    let mut step = Step {
        booking: &mut booking,
        rules,
        now,
        effects: Vec::new(),
        refused: None,
        from: record.state(),
    };
    machine.handle_with_context(cmd, &mut step);
    if let Some(e) = step.refused {
        return Err(e);
    }
    let effects = step.effects;
    booking.version += 1;
    booking.updated_at = now;
    Ok((BookingRecord { booking, machine }, effects))
}

/// One move per cover line: a visit and the covered amount.
fn cover_moves(cover: &[CoverLine], kind: MoveKind) -> impl Iterator<Item = Effect> + '_ {
    cover.iter().map(move |l| Effect::Entitlement {
        kind,
        benefit: l.benefit.clone(),
        count: 1,
        amount: l.covered,
    })
}

/// The per-command context handed to every state handler.
pub struct Step<'a> {
    booking: &'a mut Booking,
    rules: &'a SlaRules,
    now: Timestamp,
    effects: Vec<Effect>,
    refused: Option<Error>,
    from: BookingState,
}

impl Step<'_> {
    fn refuse(&mut self, cmd: &BookingCommand) -> Outcome<State> {
        self.refused = Some(Error::InvalidTransition {
            from: self.from.as_str(),
            command: cmd.name(),
        });
        Handled
    }

    fn emit(&mut self, event: EventType) {
        self.effects.push(Effect::Emit(event));
    }

    fn open_sla(&mut self, kind: SlaKind, due_at: Timestamp) {
        let entry = SlaEntry::open(kind, self.now, due_at, self.rules.at_risk_ratio);
        self.effects.extend(entry.timers().map(Effect::ArmTimer));
        self.booking.sla.push(entry);
    }

    /// Marks the open entry of `kind` met and disarms its timers.
    fn meet_sla(&mut self, kind: SlaKind) {
        let now = self.now;
        if let Some(entry) = self.booking.open_sla_mut(kind) {
            entry.meet(now);
            let timers = entry.timers();
            self.effects.extend(timers.map(Effect::CancelTimer));
        }
    }

    /// Cancels every open entry and disarms its timers.
    fn cancel_open_slas(&mut self) {
        for entry in self.booking.sla.iter_mut().filter(|e| e.state.is_open()) {
            entry.cancel();
            self.effects.extend(entry.timers().map(Effect::CancelTimer));
        }
    }

    fn release_capacity(&mut self) {
        if let Some(provider_id) = self.booking.provider_id.clone() {
            self.effects.push(Effect::Capacity {
                provider_id,
                movement: CapacityMove::Release,
            });
        }
    }

    /// Gives the whole benefit reservation back (cancel, no-show, failure).
    fn release_cover(&mut self) {
        if self.booking.cover_state == CoverState::Reserved {
            let moves: Vec<Effect> = cover_moves(&self.booking.cover, MoveKind::Release).collect();
            self.effects.extend(moves);
            self.booking.cover_state = CoverState::Released;
        }
    }

    /// Consumes what was billed (at the reserved coverage ratio) and releases the rest.
    fn consume_cover(&mut self, billed: Paise) {
        if self.booking.cover_state != CoverState::Reserved {
            return;
        }
        let consumed = consumption(&self.booking.cover, billed);
        for (line, take) in self.booking.cover.iter().zip(consumed) {
            self.effects.push(Effect::Entitlement {
                kind: MoveKind::Consume,
                benefit: line.benefit.clone(),
                count: 1,
                amount: take,
            });
            let rest = line.covered.saturating_sub(take);
            if rest > Paise::ZERO {
                self.effects.push(Effect::Entitlement {
                    kind: MoveKind::Release,
                    benefit: line.benefit.clone(),
                    count: 0,
                    amount: rest,
                });
            }
        }
        self.booking.cover_state = CoverState::Consumed;
    }

    /// Leaves the current provider for `next`: a new `pending_provider` or `failed`.
    fn reroute(&mut self, next: &RouteChoice) -> Outcome<State> {
        self.cancel_open_slas();
        self.release_capacity();
        self.release_cover();
        self.booking.routing.push(next.clone());
        match (&next.provider_id, &next.terms) {
            (Some(provider_id), Some(terms)) => {
                self.booking.provider_id = Some(provider_id.clone());
                self.booking.amounts = terms.amounts;
                self.booking.cover = terms.cover.clone();
                self.booking.cover_state = CoverState::Reserved;
                self.effects
                    .extend(cover_moves(&terms.cover, MoveKind::Reserve));
                self.effects.push(Effect::Capacity {
                    provider_id: provider_id.clone(),
                    movement: CapacityMove::Reserve,
                });
                let due = self.now.plus(terms.accept_within);
                self.open_sla(SlaKind::Acceptance, due);
                self.emit(EventType::BookingRerouted);
                Transition(State::pending_provider())
            }
            _ => {
                self.booking.provider_id = None;
                self.booking.amounts = Amounts::default();
                self.emit(EventType::BookingFailed);
                self.effects.push(Effect::OpenCase {
                    case_type: CaseType::NoProvider,
                    provider_id: None,
                    detail: "no provider left to route the booking to".into(),
                });
                Transition(State::failed())
            }
        }
    }

    /// A durable timer fired: move its SLA entry; maybe re-route on an acceptance breach.
    fn timer_fired(&mut self, timer: &TimerSpec, next: Option<&RouteChoice>) -> Outcome<State> {
        let now = self.now;
        let Some(entry) = self.booking.sla.iter_mut().rev().find(|e| {
            e.kind == timer.kind
                && e.state.is_open()
                && match timer.phase {
                    TimerPhase::AtRisk => e.at_risk_at == timer.due,
                    TimerPhase::Due => e.due_at == timer.due,
                }
        }) else {
            return Handled; // stale: the entry already moved on
        };
        match entry.fire(timer.phase, now) {
            Some(SlaState::AtRisk) => {
                self.emit(EventType::SlaAtRisk);
                Handled
            }
            Some(SlaState::Breached) => {
                let provider_id = self.booking.provider_id.clone();
                self.emit(EventType::SlaBreached);
                self.effects.push(Effect::OpenCase {
                    case_type: CaseType::SlaBreach,
                    provider_id,
                    detail: format!("{} SLA breached", timer.kind.as_str()),
                });
                // The at-risk timer may still be armed if both fire together; disarm it.
                self.effects.push(Effect::CancelTimer(TimerSpec {
                    due: entry_at_risk(self.booking, timer),
                    kind: timer.kind,
                    phase: TimerPhase::AtRisk,
                }));
                match (timer.kind, next) {
                    (SlaKind::Acceptance, Some(next))
                        if self.rules.reroute_on_acceptance_breach
                            && self.from == BookingState::PendingProvider =>
                    {
                        self.reroute(next)
                    }
                    _ => Handled,
                }
            }
            _ => Handled,
        }
    }

    /// Moves every open SLA `by` later, re-arming its timers.
    fn extend_slas(&mut self, by: Millis, cmd: &BookingCommand) -> Outcome<State> {
        let ratio = self.rules.at_risk_ratio;
        let mut moved = false;
        for entry in self.booking.sla.iter_mut().filter(|e| e.state.is_open()) {
            self.effects.extend(entry.timers().map(Effect::CancelTimer));
            entry.due_at = entry.due_at.plus(by);
            entry.at_risk_at = entry.started_at.fraction_towards(entry.due_at, ratio);
            if entry.state == SlaState::AtRisk && entry.at_risk_at > self.now {
                entry.state = SlaState::Pending;
            }
            let timers = entry.timers();
            self.effects.extend(
                timers
                    .into_iter()
                    .filter(|t| !(t.phase == TimerPhase::AtRisk && entry.state == SlaState::AtRisk))
                    .map(Effect::ArmTimer),
            );
            moved = true;
        }
        if moved {
            Handled
        } else {
            self.refuse(cmd)
        }
    }

    fn waive_copay(&mut self, extra: &[(String, Paise)]) -> Outcome<State> {
        for (benefit, amount) in extra {
            let Some(line) = self
                .booking
                .cover
                .iter_mut()
                .find(|l| &l.benefit == benefit)
            else {
                continue;
            };
            let amount = (*amount).min(line.copay);
            if amount <= Paise::ZERO {
                continue;
            }
            line.covered = line.covered.saturating_add(amount);
            line.copay = line.copay.saturating_sub(amount);
            self.booking.amounts.covered = self.booking.amounts.covered.saturating_add(amount);
            self.booking.amounts.copay = self.booking.amounts.copay.saturating_sub(amount);
            if self.booking.cover_state == CoverState::Reserved {
                self.effects.push(Effect::Entitlement {
                    kind: MoveKind::Reserve,
                    benefit: benefit.clone(),
                    count: 0,
                    amount,
                });
            }
        }
        Handled
    }

    fn force(&mut self, to: BookingState, reason: &str, cmd: &BookingCommand) -> Outcome<State> {
        match to {
            BookingState::Completed => {
                self.cancel_open_slas();
                let billed = self.booking.amounts.gross;
                self.booking.billed = Some(billed);
                self.consume_cover(billed);
                self.emit(EventType::BookingCompleted);
                Transition(State::completed())
            }
            BookingState::Cancelled => self.cancel(reason),
            BookingState::NoShow => self.no_show(),
            _ => self.refuse(cmd),
        }
    }

    fn cancel(&mut self, reason: &str) -> Outcome<State> {
        self.cancel_open_slas();
        self.release_capacity();
        self.release_cover();
        self.booking.cancel_reason = Some(reason.to_owned());
        self.emit(EventType::BookingCancelled);
        Transition(State::cancelled())
    }

    fn no_show(&mut self) -> Outcome<State> {
        self.cancel_open_slas();
        self.release_capacity();
        self.release_cover();
        Transition(State::no_show())
    }
}

/// The at-risk instant of the newest entry matching a fired timer's kind.
fn entry_at_risk(booking: &Booking, timer: &TimerSpec) -> Timestamp {
    booking
        .sla
        .iter()
        .rev()
        .find(|e| e.kind == timer.kind && e.due_at == timer.due)
        .map(|e| e.at_risk_at)
        .unwrap_or(timer.due)
}

/// `statig` shared storage: empty, since the booking data travels in the [`Step`] context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow;

#[state_machine(
    initial = "State::pending_provider()",
    state(derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)),
    superstate(derive(Debug))
)]
impl Flow {
    #[state(superstate = "active")]
    fn pending_provider(context: &mut Step<'_>, event: &BookingCommand) -> Outcome<State> {
        match event {
            BookingCommand::Accept => {
                context.meet_sla(SlaKind::Acceptance);
                let grace = context
                    .booking
                    .routing
                    .last()
                    .and_then(|r| r.terms.as_ref())
                    .map(|t| t.fulfil_grace)
                    .unwrap_or_default();
                let due = context.booking.slot.end.plus(grace);
                context.open_sla(SlaKind::Fulfilment, due);
                context.emit(EventType::BookingConfirmed);
                Transition(State::confirmed())
            }
            BookingCommand::Reject { next, .. } => context.reroute(next),
            BookingCommand::Reschedule { slot, .. } => {
                context.booking.slot = *slot;
                Handled
            }
            _ => Super,
        }
    }

    #[state(superstate = "active")]
    fn confirmed(context: &mut Step<'_>, event: &BookingCommand) -> Outcome<State> {
        match event {
            BookingCommand::SampleCollected | BookingCommand::Started => {
                context.meet_sla(SlaKind::Fulfilment);
                let due = context.now.plus(context.booking.report_tat);
                context.open_sla(SlaKind::Report, due);
                context.emit(EventType::BookingInProgress);
                Transition(State::in_progress())
            }
            BookingCommand::Reschedule { slot, fulfil_grace } => {
                context.booking.slot = *slot;
                if let Some(entry) = context.booking.open_sla_mut(SlaKind::Fulfilment) {
                    entry.cancel();
                    let timers = entry.timers();
                    context.effects.extend(timers.map(Effect::CancelTimer));
                }
                let due = slot.end.plus(*fulfil_grace);
                context.open_sla(SlaKind::Fulfilment, due);
                Handled
            }
            _ => Super,
        }
    }

    #[state(superstate = "active")]
    fn in_progress(context: &mut Step<'_>, event: &BookingCommand) -> Outcome<State> {
        match event {
            BookingCommand::ReportReady { report_url } => {
                context.booking.report_url = report_url.clone();
                context.meet_sla(SlaKind::Report);
                Handled
            }
            BookingCommand::Completed { billed } => {
                context.meet_sla(SlaKind::Report);
                let billed = billed.unwrap_or(context.booking.amounts.gross);
                context.booking.billed = Some(billed);
                context.consume_cover(billed);
                context.emit(EventType::BookingCompleted);
                Transition(State::completed())
            }
            _ => Super,
        }
    }

    /// Commands every active state accepts alike.
    #[superstate]
    fn active(context: &mut Step<'_>, event: &BookingCommand) -> Outcome<State> {
        match event {
            BookingCommand::Cancel { reason } => context.cancel(reason),
            BookingCommand::NoShow => context.no_show(),
            BookingCommand::Reassign { next } => context.reroute(next),
            BookingCommand::TimerFired { timer, next } => context.timer_fired(timer, next.as_ref()),
            BookingCommand::ExtendSla { by } => context.extend_slas(*by, event),
            BookingCommand::WaiveCopay { extra } => context.waive_copay(extra),
            BookingCommand::ForceTransition { to, reason } => context.force(*to, reason, event),
            other => context.refuse(other),
        }
    }

    #[state(superstate = "finished")]
    fn completed(event: &BookingCommand) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "finished")]
    fn cancelled(event: &BookingCommand) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "finished")]
    fn no_show(event: &BookingCommand) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "finished")]
    fn failed(event: &BookingCommand) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Terminal states: a late timer is ignored, every other command is refused.
    #[superstate]
    fn finished(context: &mut Step<'_>, event: &BookingCommand) -> Outcome<State> {
        match event {
            BookingCommand::TimerFired { .. } => Handled,
            other => context.refuse(other),
        }
    }
}
