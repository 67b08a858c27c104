//! Effects: what a transition asks the engine to write, in the same atomic batch as the new state.

use crate::ids::ProviderId;
use crate::sla::SlaKind;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Partner-facing event types (API.md "Webhook event types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    BookingCreated,
    BookingConfirmed,
    BookingInProgress,
    BookingCompleted,
    BookingCancelled,
    BookingRerouted,
    BookingFailed,
    SlaAtRisk,
    SlaBreached,
    ExceptionOpened,
    ExceptionResolved,
    ReconciliationMismatched,
    SettlementCreated,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::BookingCreated,
        EventType::BookingConfirmed,
        EventType::BookingInProgress,
        EventType::BookingCompleted,
        EventType::BookingCancelled,
        EventType::BookingRerouted,
        EventType::BookingFailed,
        EventType::SlaAtRisk,
        EventType::SlaBreached,
        EventType::ExceptionOpened,
        EventType::ExceptionResolved,
        EventType::ReconciliationMismatched,
        EventType::SettlementCreated,
    ];

    /// The wire name, e.g. `booking.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BookingCreated => "booking.created",
            EventType::BookingConfirmed => "booking.confirmed",
            EventType::BookingInProgress => "booking.in_progress",
            EventType::BookingCompleted => "booking.completed",
            EventType::BookingCancelled => "booking.cancelled",
            EventType::BookingRerouted => "booking.rerouted",
            EventType::BookingFailed => "booking.failed",
            EventType::SlaAtRisk => "sla.at_risk",
            EventType::SlaBreached => "sla.breached",
            EventType::ExceptionOpened => "exception.opened",
            EventType::ExceptionResolved => "exception.resolved",
            EventType::ReconciliationMismatched => "reconciliation.mismatched",
            EventType::SettlementCreated => "settlement.created",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Which of an SLA's two timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerPhase {
    AtRisk,
    Due,
}

/// A durable timer owned by a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerSpec {
    pub due: Timestamp,
    pub kind: SlaKind,
    pub phase: TimerPhase,
}

/// Why an exception case is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaseType {
    SlaBreach,
    NoProvider,
    ProviderRejected,
    ReconciliationMismatch,
    WebhookDead,
    Manual,
}

impl CaseType {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseType::SlaBreach => "sla_breach",
            CaseType::NoProvider => "no_provider",
            CaseType::ProviderRejected => "provider_rejected",
            CaseType::ReconciliationMismatch => "reconciliation_mismatch",
            CaseType::WebhookDead => "webhook_dead",
            CaseType::Manual => "manual",
        }
    }
}

/// What the booking did to a provider's daily capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapacityMove {
    Reserve,
    Release,
}

/// A side effect of a transition, applied atomically with the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Arm a durable timer for this booking.
    ArmTimer(TimerSpec),
    /// Remove a durable timer (harmless if it already fired).
    CancelTimer(TimerSpec),
    /// A partner-facing event (outbox row per matching webhook endpoint).
    Emit(EventType),
    /// Open an exception case about this booking.
    OpenCase {
        case_type: CaseType,
        provider_id: Option<ProviderId>,
        detail: String,
    },
    /// Move the booking's benefit usage in the entitlement ledger.
    Entitlement {
        kind: crate::eligibility::MoveKind,
        benefit: String,
        count: u32,
        amount: crate::money::Paise,
    },
    /// Move a provider's capacity counter for the booking's service day.
    Capacity {
        provider_id: ProviderId,
        movement: CapacityMove,
    },
}
