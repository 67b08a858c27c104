//! Booking values: request, routing decisions, amounts and the public state names.

use crate::eligibility::CoverLine;
use crate::ids::{BookingId, MemberId, PartnerId, PolicyId, ProviderId, ServiceCode};
use crate::money::Paise;
use crate::network::GeoPoint;
use crate::sla::{SlaEntry, SlaKind};
use crate::time::{Date, Millis, Timestamp};
use serde::{Deserialize, Serialize};

/// How the service is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    HomeCollection,
    WalkIn,
    Teleconsult,
    Delivery,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::HomeCollection => "home_collection",
            Mode::WalkIn => "walk_in",
            Mode::Teleconsult => "teleconsult",
            Mode::Delivery => "delivery",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        [
            Mode::HomeCollection,
            Mode::WalkIn,
            Mode::Teleconsult,
            Mode::Delivery,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// The appointment window; `start < end` is checked at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Where the service happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub pincode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl Address {
    /// The address's coordinates, when it has both.
    pub fn point(&self) -> Option<GeoPoint> {
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
            _ => None,
        }
    }
}

/// What the booking costs and who pays (integer paise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub gross: Paise,
    pub covered: Paise,
    pub copay: Paise,
}

/// The provider's commitments and price for this booking, fixed when it is routed there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderTerms {
    pub accept_within: Millis,
    pub fulfil_grace: Millis,
    pub amounts: Amounts,
    /// What the booking takes from each benefit at this provider's price.
    pub cover: Vec<CoverLine>,
}

/// Where a booking's entitlement moves are booked: the ledger row's owner and policy year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRef {
    /// The member, or the family on a floater policy.
    pub holder: MemberId,
    pub policy_id: PolicyId,
    pub year_start: Date,
}

/// Where the booking's benefit reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoverState {
    Reserved,
    Consumed,
    Released,
}

/// Why a routing attempt happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteTrigger {
    Initial,
    Rejected,
    AcceptanceBreach,
    Reassign,
}

impl RouteTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteTrigger::Initial => "initial",
            RouteTrigger::Rejected => "rejected",
            RouteTrigger::AcceptanceBreach => "acceptance_breach",
            RouteTrigger::Reassign => "reassign",
        }
    }
}

/// A ranked provider with the parts of its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub provider_id: ProviderId,
    pub score: f64,
    pub distance_km: f64,
    pub components: ScoreComponents,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreComponents {
    pub distance: f64,
    pub quality: f64,
    pub load: f64,
    pub price: f64,
}

/// Why a provider was not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Exclusion {
    Inactive,
    ServiceNotOffered,
    OutsideArea,
    TierNotInNetwork,
    CapacityFull,
    ClosedAtSlot,
    AlreadyTried,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Inactive => "inactive",
            Exclusion::ServiceNotOffered => "service_not_offered",
            Exclusion::OutsideArea => "outside_area",
            Exclusion::TierNotInNetwork => "tier_not_in_network",
            Exclusion::CapacityFull => "capacity_full",
            Exclusion::ClosedAtSlot => "closed_at_slot",
            Exclusion::AlreadyTried => "already_tried",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub provider_id: ProviderId,
    pub reason: Exclusion,
}

/// One routing decision: the chosen provider (if any) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChoice {
    pub attempt: u32,
    pub trigger: RouteTrigger,
    pub decided_at: Timestamp,
    pub provider_id: Option<ProviderId>,
    pub terms: Option<ProviderTerms>,
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

/// The public booking states (API.md "Booking states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BookingState {
    PendingProvider,
    Confirmed,
    InProgress,
    Completed,
    Cancelled,
    NoShow,
    Failed,
}

impl BookingState {
    pub const ALL: [BookingState; 7] = [
        BookingState::PendingProvider,
        BookingState::Confirmed,
        BookingState::InProgress,
        BookingState::Completed,
        BookingState::Cancelled,
        BookingState::NoShow,
        BookingState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingState::PendingProvider => "pending_provider",
            BookingState::Confirmed => "confirmed",
            BookingState::InProgress => "in_progress",
            BookingState::Completed => "completed",
            BookingState::Cancelled => "cancelled",
            BookingState::NoShow => "no_show",
            BookingState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<BookingState> {
        BookingState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BookingState::Completed
                | BookingState::Cancelled
                | BookingState::NoShow
                | BookingState::Failed
        )
    }
}

/// Everything a booking carries besides its lifecycle state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub partner_id: PartnerId,
    pub member_id: MemberId,
    pub policy_id: PolicyId,
    pub services: Vec<ServiceCode>,
    pub mode: Mode,
    pub slot: Slot,
    pub address: Address,
    pub partner_ref: Option<String>,
    /// The longest catalog `report_tat` of the services, fixed at creation.
    pub report_tat: Millis,
    pub provider_id: Option<ProviderId>,
    pub routing: Vec<RouteChoice>,
    pub amounts: Amounts,
    pub ledger: LedgerRef,
    pub cover: Vec<CoverLine>,
    pub cover_state: CoverState,
    pub sla: Vec<SlaEntry>,
    pub report_url: Option<String>,
    pub billed: Option<Paise>,
    pub cancel_reason: Option<String>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Booking {
    /// Providers this booking has already been routed to, oldest first.
    pub fn tried(&self) -> Vec<ProviderId> {
        self.routing
            .iter()
            .filter_map(|r| r.provider_id.clone())
            .collect()
    }

    /// Whether the current provider accepted the booking (its latest acceptance SLA is met).
    /// Decides what personal data the provider may see.
    pub fn accepted_by_current_provider(&self) -> bool {
        self.provider_id.is_some()
            && self
                .sla
                .iter()
                .rev()
                .find(|e| e.kind == SlaKind::Acceptance)
                .is_some_and(|e| e.state == crate::sla::SlaState::Met)
    }

    /// The open entry of an SLA kind, if any.
    pub fn open_sla_mut(&mut self, kind: SlaKind) -> Option<&mut SlaEntry> {
        self.sla
            .iter_mut()
            .rev()
            .find(|e| e.kind == kind && e.state.is_open())
    }
}

/// The data needed to admit a new booking (already validated at the edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewBooking {
    pub id: BookingId,
    pub partner_id: PartnerId,
    pub member_id: MemberId,
    pub policy_id: PolicyId,
    pub services: Vec<ServiceCode>,
    pub mode: Mode,
    pub slot: Slot,
    pub address: Address,
    pub partner_ref: Option<String>,
    pub report_tat: Millis,
    pub ledger: LedgerRef,
}
