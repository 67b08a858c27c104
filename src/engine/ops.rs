//! Governed operator actions: exception cases, booking interventions, and four-eyes approvals.
//!
//! Roles: an `agent` may acknowledge, escalate and resolve cases, raise a manual case, and
//! reassign, extend SLAs of, or cancel a booking. A `supervisor` may do all that, force a
//! booking to `cancelled` or `no_show`, and request or decide approvals. `waive_copay` and
//! `force_transition` to `completed` move money, so they only create an approval request that
//! a *different* supervisor must approve; only then are they applied.

use super::bookings::{booking_key, commit_transition};
use super::effects;
use super::exec::{Done, Exec, Tx};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::views;
use serde::{Deserialize, Serialize};
use store::audit::Target;
use store::keys::{self, table};
use workflows::booking::{BookingCommand, BookingRecord, BookingState, RouteTrigger};
use workflows::case::{apply_case, CaseCommand, CaseEffect, CaseState, ExceptionCase, Severity};
use workflows::effect::CaseType;
use workflows::network::OperatorRole;
use workflows::{BookingId, CaseId, EventType, Millis, OperatorId, Paise, ProviderId, Timestamp};

/// An intervention on a booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpsAction {
    Reassign { provider_id: Option<ProviderId> },
    ExtendSla { by: Millis },
    Cancel,
    ForceTransition { to: BookingState },
    WaiveCopay,
}

impl OpsAction {
    pub fn name(&self) -> &'static str {
        match self {
            OpsAction::Reassign { .. } => "reassign",
            OpsAction::ExtendSla { .. } => "extend_sla",
            OpsAction::Cancel => "cancel",
            OpsAction::ForceTransition { .. } => "force_transition",
            OpsAction::WaiveCopay => "waive_copay",
        }
    }

    fn needs_approval(&self) -> bool {
        matches!(
            self,
            OpsAction::WaiveCopay
                | OpsAction::ForceTransition {
                    to: BookingState::Completed
                }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }
}

/// A money-moving or forcing action waiting for a second supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: uuid::Uuid,
    pub booking_id: BookingId,
    pub action: OpsAction,
    pub reason: String,
    pub requested_by: OperatorId,
    pub state: ApprovalState,
    pub decided_by: Option<OperatorId>,
    pub decision_reason: Option<String>,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
}

impl Approval {
    pub fn view(&self) -> serde_json::Value {
        use crate::clock::rfc3339;
        serde_json::json!({
            "approval_id": self.id.to_string(),
            "id": self.id.to_string(),
            "state": self.state.as_str(),
            "booking_id": self.booking_id.to_string(),
            "action": self.action.name(),
            "to_state": match &self.action { OpsAction::ForceTransition { to } => Some(to.as_str()), _ => None },
            "reason": self.reason,
            "requested_by": self.requested_by.as_str(),
            "decided_by": self.decided_by.as_ref().map(|o| o.as_str()),
            "decision_reason": self.decision_reason,
            "created_at": rfc3339(self.created_at),
            "decided_at": self.decided_at.map(rfc3339),
        })
    }
}

pub fn approval_key(id: &uuid::Uuid) -> Vec<u8> {
    keys::one(table::APPROVAL, id.as_bytes())
}

fn operator(tx: &Tx<'_, '_>) -> Exec<(OperatorId, OperatorRole)> {
    match &tx.req.principal {
        Principal::Operator(id, role) => Ok((id.clone(), *role)),
        _ => Err(ApiError::Forbidden("this action needs an operator key".into()).into()),
    }
}

fn load_case(tx: &Tx<'_, '_>, id: CaseId) -> Exec<ExceptionCase> {
    tx.txn
        .get(&keys::one(table::CASE, id.as_bytes()))?
        .ok_or_else(|| ApiError::NotFound(format!("exception {id}")).into())
}

/// Applies a case command and its effects (timer, event), writing the case back.
fn move_case(tx: &mut Tx<'_, '_>, case: &ExceptionCase, cmd: &CaseCommand) -> Exec<ExceptionCase> {
    let (next, fx) =
        apply_case(case, cmd, tx.now).map_err(|e| ApiError::InvalidTransition(e.to_string()))?;
    for effect in fx {
        match effect {
            CaseEffect::CancelAckTimer => tx.txn.delete(ack_timer_key(case, tx.ctx.ack_within)),
            CaseEffect::Resolved => {
                super::webhooks::enqueue(
                    tx,
                    &next.partner_id,
                    EventType::ExceptionResolved.as_str(),
                    next.booking_id.map(|b| b.0).unwrap_or(next.id.0),
                    next.booking_id.map(|b| b.0),
                    |_: &mut Tx<'_, '_>| Ok(views::case_view(&next)),
                )?;
            }
        }
    }
    tx.txn
        .put(keys::one(table::CASE, next.id.as_bytes()), &next)?;
    Ok(next)
}

/// The acknowledgement timer of a case (kind byte 3 in the timer index), due `ack_within`
/// after it opened.
pub(super) fn ack_timer_key(case: &ExceptionCase, ack_within: Millis) -> Vec<u8> {
    let due = case.opened_at.0.saturating_add(ack_within.0).max(0) as u64;
    keys::timer(due, case.id.as_bytes(), CASE_ACK_KIND, 1)
}

/// Timer-index kind byte of case acknowledgement deadlines (0–2 are booking SLAs).
pub(super) const CASE_ACK_KIND: u8 = 3;

/// Arms the ack timer of a new case.
pub(super) fn arm_ack_timer(tx: &mut Tx<'_, '_>, case: &ExceptionCase) {
    tx.txn
        .put_raw(ack_timer_key(case, tx.ctx.ack_within), Vec::new());
    tx.ctx
        .timer_wake
        .armed(case.opened_at.0.saturating_add(tx.ctx.ack_within.0));
}

/// The ack deadline fired.
pub(super) fn ack_deadline(tx: &mut Tx<'_, '_>, case_id: CaseId) -> Exec<Done> {
    let Some(case): Option<ExceptionCase> =
        tx.txn.get(&keys::one(table::CASE, case_id.as_bytes()))?
    else {
        let mut done = Done::json(200, &serde_json::json!({ "fired": false }))?;
        done.audited = false;
        return Ok(done);
    };
    let next = move_case(tx, &case, &CaseCommand::AckDeadline)?;
    let mut done = Done::json(200, &views::case_view(&next))?
        .states(Some(case.state.as_str()), Some(next.state.as_str()));
    done.action = Some(
        if next.state != case.state {
            "exception.escalated"
        } else {
            "timer.stale"
        }
        .into(),
    );
    done.reason = Some("not acknowledged within [exceptions] ack_within".into());
    Ok(done)
}

pub(super) fn case_action(tx: &mut Tx<'_, '_>, id: CaseId, cmd: &CaseCommand) -> Exec<Done> {
    operator(tx)?;
    let case = load_case(tx, id)?;
    let next = move_case(tx, &case, cmd)?;
    let mut done = Done::json(200, &views::case_view(&next))?
        .states(Some(case.state.as_str()), Some(next.state.as_str()));
    done.reason = match cmd {
        CaseCommand::Acknowledge { reason, .. }
        | CaseCommand::Escalate { reason, .. }
        | CaseCommand::Resolve { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    Ok(done)
}

/// Records on a booking's open cases that their cause went away (the booking completed).
pub(super) fn clear_causes(tx: &mut Tx<'_, '_>, record: &BookingRecord) -> Exec<()> {
    for case in effects::cases_of(tx, &record.booking)? {
        if case.case_type == CaseType::SlaBreach && case.state != CaseState::Resolved {
            move_case(
                tx,
                &case,
                &CaseCommand::CauseCleared {
                    detail: "the booking completed".into(),
                },
            )?;
        }
    }
    Ok(())
}

pub(super) fn raise_case(
    tx: &mut Tx<'_, '_>,
    booking: BookingId,
    reason: &str,
    severity: Option<Severity>,
) -> Exec<Done> {
    let (op, _) = operator(tx)?;
    let Some(record): Option<BookingRecord> = tx.txn.get(&booking_key(booking))? else {
        return Err(ApiError::NotFound(format!("booking {booking}")).into());
    };
    let mut case = ExceptionCase::open(
        CaseId(uuid::Uuid::now_v7()),
        CaseType::Manual,
        record.booking.partner_id.clone(),
        Some(booking),
        record.booking.provider_id.clone(),
        reason.to_owned(),
        tx.now,
    );
    if let Some(s) = severity {
        case.severity = s;
    }
    if let Some(h) = case.history.first_mut() {
        h.by = op.to_string();
        h.reason = Some(reason.to_owned());
    }
    effects::store_case(tx, &case, true)?;
    let mut done = Done::json(201, &views::case_view(&case))?.states(None, Some("open"));
    done.reason = Some(reason.to_owned());
    Ok(done)
}

/// Extra coverage a copay waiver may add per benefit: the copay, capped by what is left.
fn waiver(tx: &Tx<'_, '_>, record: &BookingRecord) -> Exec<Vec<(String, Paise)>> {
    let b = &record.booking;
    let policy: Option<workflows::policy::Policy> = tx.txn.get(&keys::scoped(
        table::POLICY,
        b.partner_id.as_str(),
        b.policy_id.as_str().as_bytes(),
    ))?;
    let usage = match &policy {
        Some(p) => super::eligibility::usage_of(tx.txn, &b.partner_id, p, &b.ledger)?,
        None => Default::default(),
    };
    let mut out = Vec::new();
    for line in &b.cover {
        let benefit = policy.as_ref().and_then(|p| {
            p.benefits
                .iter()
                .find(|x| workflows::eligibility::benefit_key(x) == line.benefit)
        });
        let left = match (benefit, usage.get(&line.benefit)) {
            (Some(bf), Some(u)) => u.amount_remaining(bf),
            _ => None,
        };
        let extra = left.map_or(line.copay, |l| line.copay.min(l));
        out.push((line.benefit.clone(), extra));
    }
    Ok(out)
}

/// Applies an (approved or directly allowed) action to a booking.
fn apply_action(
    tx: &mut Tx<'_, '_>,
    record: &BookingRecord,
    action: &OpsAction,
    reason: &str,
) -> Exec<BookingRecord> {
    let cmd = match action {
        OpsAction::Reassign { provider_id } => {
            let next = super::bookings::next_route_to(
                tx,
                record,
                RouteTrigger::Reassign,
                provider_id.as_ref(),
            )?;
            if let Some(wanted) = provider_id {
                if next.provider_id.as_ref() != Some(wanted) {
                    let why = next
                        .excluded
                        .iter()
                        .find(|e| &e.provider_id == wanted)
                        .map_or("it does not serve this booking's area", |e| {
                            e.reason.as_str()
                        });
                    return Err(ApiError::Unprocessable(
                        "provider_not_eligible",
                        format!("provider {wanted} cannot take this booking: {why}"),
                    )
                    .into());
                }
            }
            BookingCommand::Reassign { next }
        }
        OpsAction::ExtendSla { by } => BookingCommand::ExtendSla { by: *by },
        OpsAction::Cancel => BookingCommand::Cancel {
            reason: reason.to_owned(),
        },
        OpsAction::ForceTransition { to } => BookingCommand::ForceTransition {
            to: *to,
            reason: reason.to_owned(),
        },
        OpsAction::WaiveCopay => BookingCommand::WaiveCopay {
            extra: waiver(tx, record)?,
        },
    };
    commit_transition(tx, record, &cmd)
}

pub(super) fn booking_action(
    tx: &mut Tx<'_, '_>,
    id: BookingId,
    action: &OpsAction,
    reason: &str,
) -> Exec<Done> {
    let (op, role) = operator(tx)?;
    let Some(record): Option<BookingRecord> = tx.txn.get(&booking_key(id))? else {
        return Err(ApiError::NotFound(format!("booking {id}")).into());
    };
    let supervisor_only =
        action.needs_approval() || matches!(action, OpsAction::ForceTransition { .. });
    if supervisor_only && role != OperatorRole::Supervisor {
        return Err(ApiError::Forbidden(format!("`{}` needs a supervisor", action.name())).into());
    }
    if let OpsAction::ForceTransition { to } = action {
        if !matches!(
            to,
            BookingState::Completed | BookingState::Cancelled | BookingState::NoShow
        ) {
            return Err(
                ApiError::field("to_state", "must be completed, cancelled or no_show").into(),
            );
        }
    }
    if record.state().is_terminal() {
        return Err(ApiError::InvalidTransition(format!(
            "`{}` is not allowed while the booking is {}",
            action.name(),
            record.state().as_str()
        ))
        .into());
    }
    let from = record.state();
    if action.needs_approval() {
        let approval = Approval {
            id: uuid::Uuid::now_v7(),
            booking_id: id,
            action: action.clone(),
            reason: reason.to_owned(),
            requested_by: op,
            state: ApprovalState::Pending,
            decided_by: None,
            decision_reason: None,
            created_at: tx.now,
            decided_at: None,
        };
        tx.txn.put(approval_key(&approval.id), &approval)?;
        let mut done =
            Done::json(202, &approval.view())?.states(Some(from.as_str()), Some(from.as_str()));
        done.action = Some(format!("approval.requested.{}", action.name()));
        done.reason = Some(reason.to_owned());
        return Ok(done);
    }
    let next = apply_action(tx, &record, action, reason)?;
    let cases = effects::cases_of(tx, &next.booking)?;
    let mut done = Done::json(200, &views::booking_view(&next, &cases))?
        .states(Some(from.as_str()), Some(next.state().as_str()));
    done.action = Some(format!("booking.ops.{}", action.name()));
    done.reason = Some(reason.to_owned());
    Ok(done)
}

pub(super) fn decide(
    tx: &mut Tx<'_, '_>,
    id: &uuid::Uuid,
    approve: bool,
    reason: &str,
) -> Exec<Done> {
    let (op, role) = operator(tx)?;
    if role != OperatorRole::Supervisor {
        return Err(ApiError::Forbidden("only a supervisor decides approvals".into()).into());
    }
    let Some(mut approval): Option<Approval> = tx.txn.get(&approval_key(id))? else {
        return Err(ApiError::NotFound(format!("approval {id}")).into());
    };
    if approval.requested_by == op {
        return Err(ApiError::FourEyes.into());
    }
    if approval.state != ApprovalState::Pending {
        return Err(ApiError::Conflict(
            "invalid_transition",
            format!("the approval is already {}", approval.state.as_str()),
        )
        .into());
    }
    approval.decided_by = Some(op);
    approval.decision_reason = Some(reason.to_owned());
    approval.decided_at = Some(tx.now);
    approval.state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Rejected
    };
    if approve {
        let Some(record): Option<BookingRecord> = tx.txn.get(&booking_key(approval.booking_id))?
        else {
            return Err(ApiError::NotFound(format!("booking {}", approval.booking_id)).into());
        };
        apply_action(tx, &record, &approval.action, &approval.reason)?;
    }
    tx.txn.put(approval_key(id), &approval)?;
    let mut done =
        Done::json(200, &approval.view())?.states(Some("pending"), Some(approval.state.as_str()));
    done.reason = Some(reason.to_owned());
    Ok(done)
}

/// Audits a read of members' personal data (who read it is the request's principal).
pub(super) fn record_access(
    tx: &mut Tx<'_, '_>,
    partner: &workflows::PartnerId,
    members: &[workflows::MemberId],
    via: &str,
) -> Exec<Done> {
    for (i, m) in members.iter().enumerate() {
        if i > 0 && tx.ctx.audit {
            // One entry per member: the first is the command's own entry.
            let draft = store::audit::AuditDraft {
                at: tx.at.clone(),
                actor: tx.req.principal.actor(),
                action: "member.personal_data_read".into(),
                target: Target {
                    kind: "member".into(),
                    id: format!("{partner}/{m}"),
                },
                from_state: None,
                to_state: None,
                reason: Some(via.to_owned()),
                request_id: Some(tx.req.request_id.clone()),
                outcome: None,
                error: None,
                detail: None,
            };
            store::audit::append(tx.txn, tx.head, draft)?;
        }
    }
    let mut done = Done::json(200, &serde_json::json!({ "recorded": members.len() }))?;
    done.reason = Some(via.to_owned());
    done.audited = !members.is_empty();
    Ok(done)
}
