//! The engine: one committer thread owns every write (DESIGN.md "The engine").
//!
//! Handlers, the timer loop and cron jobs build a [`Request`] and call [`Handle::submit`]. The
//! committer drains up to `batch_commands_max` requests, runs each against one store
//! transaction (state machine → effects → audit entry → idempotency record), commits the batch
//! with one flush + one fdatasync, and only then replies to everyone in it.

mod admin;
mod bookings;
mod committer;
mod cron;
mod effects;
pub mod eligibility;
mod exec;
pub mod ops;
pub mod routing;
mod timers;
mod webhooks;

use crate::auth::{KeyOwner, Principal};
use crate::error::ApiError;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use workflows::booking::{Address, Mode, Slot};
use workflows::network::{CatalogService, Operator, Partner, Provider};
use workflows::policy::{Member, Policy};
use workflows::{BookingId, MemberId, Paise, PartnerId, ServiceCode};

pub use committer::{spawn, EngineContext, TimerWake};
pub use cron::{run_key as cron_run_key, CronRun};
pub use effects::LedgerMove;
pub use webhooks::{endpoint_view, AttemptOutcome};

/// A command plus who sent it and how to deduplicate it.
#[derive(Debug)]
pub struct Request {
    pub principal: Principal,
    pub request_id: String,
    pub idempotency: Option<Idempotency>,
    pub command: Command,
}

/// An `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

/// Everything that changes state. Records arrive validated; timestamps are set by the engine.
#[derive(Debug)]
pub enum Command {
    PutPartner(Partner),
    CreateKey {
        owner: KeyOwner,
        key_id: String,
        key_hash: [u8; 32],
        /// Shown once in the reply; never stored.
        key_plain: String,
    },
    PutCatalog(CatalogService),
    PutProvider(Provider),
    PutOperator(Operator),
    PutPolicy(Policy),
    PutMember(Member),
    /// Upserts a chunk of a CSV roster (rows already validated).
    ImportMembers(Vec<Member>),
    CreateBooking(NewBookingRequest),
    Booking {
        id: BookingId,
        action: BookingAction,
    },
    /// A durable timer is due (its raw timer-index key).
    FireTimer {
        key: Vec<u8>,
    },
    /// Claims a cron slot: refused with 409 if this job already ran for it.
    ClaimCronRun {
        job: String,
        slot: workflows::Timestamp,
        manual: bool,
    },
    /// Records how a claimed cron run ended.
    FinishCronRun {
        job: String,
        slot: workflows::Timestamp,
        outcome: String,
        result: serde_json::Value,
    },
    PutWebhookEndpoint {
        endpoint: crate::webhooks::Endpoint,
        /// A secret to set (rotating the old one), or `None` to keep (or, new, to generate).
        secret: Option<String>,
    },
    DeleteWebhookEndpoint {
        partner: PartnerId,
        id: String,
    },
    /// The dispatcher reports delivery attempts (batched: one audit entry per delivery).
    RecordAttempts(
        Vec<(
            uuid::Uuid,
            crate::webhooks::Attempt,
            webhooks::AttemptOutcome,
        )>,
    ),
    ReplayDelivery {
        partner: PartnerId,
        delivery: uuid::Uuid,
    },
    ReplayDead {
        partner: PartnerId,
        since: Option<workflows::Timestamp>,
    },
    /// An operator acts on a booking (roles and four-eyes rules apply).
    OpsBookingAction {
        booking: BookingId,
        action: ops::OpsAction,
        reason: String,
    },
    /// An operator moves an exception case.
    CaseAction {
        case: workflows::CaseId,
        command: workflows::case::CaseCommand,
    },
    /// An operator raises a `manual` case on a booking.
    RaiseCase {
        booking: BookingId,
        reason: String,
        severity: Option<workflows::case::Severity>,
    },
    /// A supervisor approves or rejects a pending approval.
    DecideApproval {
        approval: uuid::Uuid,
        approve: bool,
        reason: String,
    },
    /// Audits reads of members' personal data.
    RecordAccess {
        partner: PartnerId,
        members: Vec<MemberId>,
        via: String,
    },
    /// Drops idempotency records created before `before`, at most `max` per command.
    PurgeIdempotency {
        before: workflows::Timestamp,
        max: usize,
    },
}

/// A validated `POST /v1/bookings`.
#[derive(Debug, Clone)]
pub struct NewBookingRequest {
    pub id: BookingId,
    pub partner_id: PartnerId,
    pub member_id: MemberId,
    pub services: Vec<ServiceCode>,
    pub mode: Mode,
    pub slot: Slot,
    pub address: Option<Address>,
    pub partner_ref: Option<String>,
}

/// A command addressed to an existing booking.
#[derive(Debug, Clone)]
pub enum BookingAction {
    Cancel { reason: String },
    Reschedule { slot: Slot },
    Accept,
    Reject { reason: Option<String> },
    SampleCollected,
    Started,
    ReportReady { report_url: Option<String> },
    Completed { billed: Option<Paise> },
    NoShow,
}

impl BookingAction {
    pub fn name(&self) -> &'static str {
        match self {
            BookingAction::Cancel { .. } => "cancel",
            BookingAction::Reschedule { .. } => "reschedule",
            BookingAction::Accept => "accept",
            BookingAction::Reject { .. } => "reject",
            BookingAction::SampleCollected => "sample_collected",
            BookingAction::Started => "started",
            BookingAction::ReportReady { .. } => "report_ready",
            BookingAction::Completed { .. } => "completed",
            BookingAction::NoShow => "no_show",
        }
    }
}

/// The committed answer: exactly what the client receives (and what a replay returns).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub replayed: bool,
}

impl Reply {
    pub fn error(e: &ApiError, request_id: &str) -> Reply {
        Reply {
            status: e.status(),
            body: Bytes::from(e.to_problem(request_id)),
            replayed: false,
        }
    }
}

struct Envelope {
    request: Request,
    reply: oneshot::Sender<Reply>,
}

/// A cheap, cloneable way to reach the committer.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Envelope>,
}

impl Handle {
    /// Submits a request and waits until it is durable (or refused).
    pub async fn submit(&self, request: Request) -> Reply {
        let request_id = request.request_id.clone();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Envelope { request, reply }).await.is_err() {
            return Reply::error(&ApiError::Unavailable, &request_id);
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Reply::error(&ApiError::Unavailable, &request_id),
        }
    }
}
