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
