//! Exception cases: failures that need an operator. (The full operator workflow builds on this.)

use crate::effect::CaseType;
use crate::ids::{BookingId, CaseId, PartnerId, ProviderId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaseState {
    Open,
    Acknowledged,
    Escalated,
    Resolved,
}

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Acknowledged => "acknowledged",
            CaseState::Escalated => "escalated",
            CaseState::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// The default severity of a case type.
    pub fn of(case_type: CaseType) -> Severity {
        match case_type {
            CaseType::NoProvider | CaseType::WebhookDead => Severity::High,
            CaseType::SlaBreach | CaseType::ReconciliationMismatch => Severity::Medium,
            CaseType::ProviderRejected | CaseType::Manual => Severity::Low,
        }
    }
}

/// One step of a case's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseEvent {
    pub at: Timestamp,
    pub action: String,
    pub by: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionCase {
    pub id: CaseId,
    pub case_type: CaseType,
    pub state: CaseState,
    pub severity: Severity,
    pub partner_id: PartnerId,
    pub booking_id: Option<BookingId>,
    pub provider_id: Option<ProviderId>,
    pub detail: String,
    /// The operator who acknowledged it.
    pub assignee: Option<String>,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub history: Vec<CaseEvent>,
}

impl ExceptionCase {
    pub fn open(
        id: CaseId,
        case_type: CaseType,
        partner_id: PartnerId,
        booking_id: Option<BookingId>,
        provider_id: Option<ProviderId>,
        detail: String,
        now: Timestamp,
    ) -> ExceptionCase {
        ExceptionCase {
            id,
            case_type,
            state: CaseState::Open,
            severity: Severity::of(case_type),
            partner_id,
            booking_id,
            provider_id,
            detail,
            assignee: None,
            opened_at: now,
            updated_at: now,
            history: vec![CaseEvent {
                at: now,
                action: "opened".into(),
                by: "system".into(),
                reason: None,
            }],
        }
    }
}

/// A command addressed to an exception case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseCommand {
    Acknowledge {
        by: String,
        reason: String,
    },
    Escalate {
        by: String,
        reason: String,
    },
    Resolve {
        by: String,
        reason: String,
    },
    /// The acknowledgement deadline passed (a durable timer).
    AckDeadline,
    /// What caused the case went away (e.g. the booking completed after a breach).
    CauseCleared {
        detail: String,
    },
}

impl CaseCommand {
    pub fn name(&self) -> &'static str {
        match self {
            CaseCommand::Acknowledge { .. } => "acknowledge",
            CaseCommand::Escalate { .. } => "escalate",
            CaseCommand::Resolve { .. } => "resolve",
            CaseCommand::AckDeadline => "ack_deadline",
            CaseCommand::CauseCleared { .. } => "cause_cleared",
        }
    }
}

/// Why a case command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("`{command}` is not allowed while the case is {from}")]
    InvalidTransition {
        from: &'static str,
        command: &'static str,
    },
}

/// What a case transition asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEffect {
    /// Disarm the acknowledgement timer (acknowledged, escalated or resolved in time).
    CancelAckTimer,
    Resolved,
}

/// The case lifecycle.
///
/// | from                   | command          | to           |
/// |------------------------|------------------|--------------|
/// | open                   | acknowledge      | acknowledged |
/// | open, acknowledged     | escalate         | escalated    |
/// | open                   | ack deadline     | escalated (by `system`) |
/// | open, acknowledged, escalated | resolve   | resolved     |
/// | any but resolved       | cause cleared    | same (recorded in history) |
/// | acknowledged, escalated, resolved | ack deadline | same (a late timer is ignored) |
/// | anything else          |                  | refused: `invalid_transition` |
pub fn apply_case(
    case: &ExceptionCase,
    cmd: &CaseCommand,
    now: Timestamp,
) -> Result<(ExceptionCase, Vec<CaseEffect>), CaseError> {
    use CaseState::*;
    let refuse = || CaseError::InvalidTransition {
        from: case.state.as_str(),
        command: cmd.name(),
    };
    let mut next = case.clone();
    let mut effects = Vec::new();
    let (action, by, reason, to) = match (case.state, cmd) {
        (Open, CaseCommand::Acknowledge { by, reason }) => {
            effects.push(CaseEffect::CancelAckTimer);
            (
                "acknowledged",
                by.clone(),
                Some(reason.clone()),
                Acknowledged,
            )
        }
        (Open | Acknowledged, CaseCommand::Escalate { by, reason }) => {
            effects.push(CaseEffect::CancelAckTimer);
            ("escalated", by.clone(), Some(reason.clone()), Escalated)
        }
        (Open, CaseCommand::AckDeadline) => (
            "escalated",
            "system".to_string(),
            Some("not acknowledged in time".to_string()),
            Escalated,
        ),
        (Acknowledged | Escalated | Resolved, CaseCommand::AckDeadline) => {
            return Ok((next, effects));
        }
        (Open | Acknowledged | Escalated, CaseCommand::Resolve { by, reason }) => {
            effects.push(CaseEffect::CancelAckTimer);
            effects.push(CaseEffect::Resolved);
            ("resolved", by.clone(), Some(reason.clone()), Resolved)
        }
        (Open | Acknowledged | Escalated, CaseCommand::CauseCleared { detail }) => (
            "cause_cleared",
            "system".to_string(),
            Some(detail.clone()),
            case.state,
        ),
        _ => return Err(refuse()),
    };
    if to == Escalated && case.severity != Severity::High {
        next.severity = Severity::High;
    }
    if let CaseCommand::Acknowledge { by, .. } = cmd {
        next.assignee = Some(by.clone());
    }
    next.state = to;
    next.updated_at = now;
    next.history.push(CaseEvent {
        at: now,
        action: action.into(),
        by,
        reason,
    });
    Ok((next, effects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn case() -> ExceptionCase {
        ExceptionCase::open(
            CaseId(uuid::Uuid::nil()),
            CaseType::SlaBreach,
            PartnerId::parse("p").unwrap(),
            None,
            None,
            "d".into(),
            Timestamp(0),
        )
    }

    fn by(s: &str) -> (String, String) {
        (s.into(), "because".into())
    }

    #[test]
    fn open_acknowledge_escalate_resolve() {
        let (b, r) = by("agent-1");
        let (c, fx) = apply_case(
            &case(),
            &CaseCommand::Acknowledge {
                by: b.clone(),
                reason: r.clone(),
            },
            Timestamp(1),
        )
        .unwrap();
        assert_eq!(c.state, CaseState::Acknowledged);
        assert_eq!(c.assignee.as_deref(), Some("agent-1"));
        assert_eq!(fx, vec![CaseEffect::CancelAckTimer]);
        let (c, _) = apply_case(
            &c,
            &CaseCommand::Escalate {
                by: b.clone(),
                reason: r.clone(),
            },
            Timestamp(2),
        )
        .unwrap();
        assert_eq!(
            (c.state, c.severity),
            (CaseState::Escalated, Severity::High)
        );
        let (c, fx) = apply_case(
            &c,
            &CaseCommand::Resolve {
                by: b.clone(),
                reason: r.clone(),
            },
            Timestamp(3),
        )
        .unwrap();
        assert_eq!(c.state, CaseState::Resolved);
        assert!(fx.contains(&CaseEffect::Resolved));
        assert!(apply_case(
            &c,
            &CaseCommand::Acknowledge { by: b, reason: r },
            Timestamp(4)
        )
        .is_err());
        assert_eq!(c.history.len(), 4);
    }

    #[test]
    fn the_ack_deadline_escalates_only_open_cases() {
        let (c, _) = apply_case(&case(), &CaseCommand::AckDeadline, Timestamp(9)).unwrap();
        assert_eq!(c.state, CaseState::Escalated);
        assert_eq!(c.history.last().map(|h| h.by.as_str()), Some("system"));
        let (b, r) = by("a");
        let (acked, _) = apply_case(
            &case(),
            &CaseCommand::Acknowledge { by: b, reason: r },
            Timestamp(1),
        )
        .unwrap();
        let (same, fx) = apply_case(&acked, &CaseCommand::AckDeadline, Timestamp(9)).unwrap();
        assert_eq!((same, fx), (acked, vec![]));
    }

    proptest! {
        /// Random command sequences: resolved is final, history grows by one per accepted
        /// state change or cleared cause, and refusals change nothing.
        #[test]
        fn case_lifecycle_stays_valid(cmds in proptest::collection::vec(0u8..5, 0..30)) {
            let mut c = case();
            for (i, k) in cmds.into_iter().enumerate() {
                let (b, r) = by("op");
                let cmd = match k {
                    0 => CaseCommand::Acknowledge { by: b, reason: r },
                    1 => CaseCommand::Escalate { by: b, reason: r },
                    2 => CaseCommand::Resolve { by: b, reason: r },
                    3 => CaseCommand::AckDeadline,
                    _ => CaseCommand::CauseCleared { detail: "x".into() },
                };
                let before = c.clone();
                match apply_case(&c, &cmd, Timestamp(i as i64)) {
                    Ok((next, _)) => {
                        if before.state == CaseState::Resolved {
                            prop_assert_eq!(next.state, CaseState::Resolved);
                        }
                        prop_assert!(next.history.len() <= before.history.len() + 1);
                        c = next;
                    }
                    Err(_) => prop_assert_eq!(&c, &before),
                }
            }
        }
    }
}
