//! Running one request inside the batch transaction: idempotency, dispatch, audit.

use super::committer::EngineContext;
use super::{admin, bookings, cron, ops, timers, webhooks, Command, Reply, Request};
use crate::error::ApiError;
use bytes::Bytes;
use serde::Serialize;
use store::audit::{self, AuditDraft, ChainHead, Target};
use store::keys::{self, table};
use store::Txn;
use workflows::Timestamp;

/// Why a command did not complete: the client's problem (audited, replied) or a store fault.
pub(super) enum Fail {
    Api(ApiError),
    Store(store::Error),
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail::Api(e)
    }
}

impl From<super::eligibility::Fault> for Fail {
    fn from(f: super::eligibility::Fault) -> Fail {
        match f {
            super::eligibility::Fault::Api(e) => Fail::Api(e),
            super::eligibility::Fault::Store(e) => Fail::Store(e),
        }
    }
}

impl From<store::Error> for Fail {
    fn from(e: store::Error) -> Fail {
        Fail::Store(e)
    }
}

pub(super) type Exec<T> = Result<T, Fail>;

/// What an accepted command answers, and what its audit entry says about it.
pub(super) struct Done {
    pub status: u16,
    pub body: Vec<u8>,
    /// What an idempotent replay returns, when it must differ (a key is shown only once).
    pub replay_body: Option<Vec<u8>>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub reason: Option<String>,
    /// Overrides the audit action known before the command ran (e.g. `sla.breached`).
    pub action: Option<String>,
    /// False for a command that turned out to be a no-op (a timer already gone).
    pub audited: bool,
}

impl Done {
    pub(super) fn json(status: u16, value: &impl Serialize) -> Exec<Done> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        Ok(Done {
            status,
            body,
            replay_body: None,
            from_state: None,
            to_state: None,
            reason: None,
            action: None,
            audited: true,
        })
    }

    pub(super) fn states(mut self, from: Option<&str>, to: Option<&str>) -> Done {
        self.from_state = from.map(str::to_owned);
        self.to_state = to.map(str::to_owned);
        self
    }
}

/// A stored response for an `Idempotency-Key`.
///
/// Stored as `[format] ‖ fingerprint (32) ‖ status (u16 BE) ‖ created_ms (i64 BE) ‖ body`
/// rather than through the codec: the body is opaque bytes, and serde would encode it one
/// byte at a time. Format 1 keeps the body as is; format 2 (bodies of `COMPRESS_FROM` bytes
/// and more, such as a booking with its routing lists) keeps it LZ4-compressed with its length
/// in front: the replay is still byte-identical, and the store keeps a few KB per booking
/// less (JSON of a routing decision compresses several times).
pub(super) struct IdempotencyRecord {
    pub fingerprint: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: Timestamp,
}

const IDEMPOTENCY_PLAIN: u8 = 1;
const IDEMPOTENCY_LZ4: u8 = 2;
const IDEMPOTENCY_HEADER: usize = 1 + 32 + 2 + 8;
/// Bodies from this size on are stored compressed.
const COMPRESS_FROM: usize = 1024;
/// A stored body never decompresses to more than this (responses are far smaller).
const BODY_MAX: usize = 16 << 20;

impl IdempotencyRecord {
    fn encode(&self) -> Vec<u8> {
        let (format, body) = if self.body.len() >= COMPRESS_FROM {
            (
                IDEMPOTENCY_LZ4,
                std::borrow::Cow::Owned(lz4_flex::compress_prepend_size(&self.body)),
            )
        } else {
            (
                IDEMPOTENCY_PLAIN,
                std::borrow::Cow::Borrowed(&self.body[..]),
            )
        };
        let mut out = Vec::with_capacity(IDEMPOTENCY_HEADER + body.len());
        out.push(format);
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.created_at.0.to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Result<IdempotencyRecord, store::Error> {
        let corrupt = || store::Error::Decode("idempotency record".into());
        if bytes.len() < IDEMPOTENCY_HEADER
            || !matches!(bytes[0], IDEMPOTENCY_PLAIN | IDEMPOTENCY_LZ4)
        {
            return Err(corrupt());
        }
        let stored = &bytes[IDEMPOTENCY_HEADER..];
        let body = if bytes[0] == IDEMPOTENCY_LZ4 {
            let declared = stored
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from_le_bytes(b) as usize)
                .ok_or_else(corrupt)?;
            if declared > BODY_MAX {
                return Err(corrupt());
            }
            lz4_flex::decompress_size_prepended(stored).map_err(|_| corrupt())?
        } else {
            stored.to_vec()
        };
        let fingerprint: [u8; 32] = bytes[1..33].try_into().map_err(|_| corrupt())?;
        let status = u16::from_be_bytes(bytes[33..35].try_into().map_err(|_| corrupt())?);
        let created = i64::from_be_bytes(bytes[35..43].try_into().map_err(|_| corrupt())?);
        Ok(IdempotencyRecord {
            fingerprint,
            status,
            body,
            created_at: Timestamp(created),
        })
    }
}

/// The per-command view of the batch: the transaction, the audit head, who and when.
pub(super) struct Tx<'a, 's> {
    pub ctx: &'a EngineContext,
    pub txn: &'a mut Txn<'s>,
    pub head: &'a mut ChainHead,
    pub req: &'a Request,
    pub now: Timestamp,
    pub at: String,
}

impl Tx<'_, '_> {
    /// Appends an audit entry for one item of a batched command, by the request's principal.
    pub(super) fn audit_item(&mut self, action: &str, target: Target, done: &Done) -> Exec<()> {
        if !self.ctx.audit {
            return Ok(());
        }
        let draft = AuditDraft {
            at: self.at.clone(),
            actor: self.req.principal.actor(),
            action: action.into(),
            target,
            from_state: done.from_state.clone(),
            to_state: done.to_state.clone(),
            reason: done.reason.clone(),
            request_id: Some(self.req.request_id.clone()),
            outcome: None,
            error: None,
            detail: None,
        };
        audit::append(self.txn, self.head, draft)?;
        Ok(())
    }

    /// Appends an extra audit entry (e.g. a case the command opened) by the system.
    pub(super) fn audit_system(
        &mut self,
        action: &str,
        target: Target,
        to_state: Option<&str>,
        detail: Option<String>,
    ) -> Exec<()> {
        let draft = AuditDraft {
            at: self.at.clone(),
            actor: crate::auth::Principal::System("engine").actor(),
            action: action.into(),
            target,
            from_state: None,
            to_state: to_state.map(str::to_owned),
            reason: None,
            request_id: Some(self.req.request_id.clone()),
            outcome: None,
            error: None,
            detail,
        };
        if self.ctx.audit {
            audit::append(self.txn, self.head, draft)?;
        }
        Ok(())
    }
}

pub(super) fn kind_of(cmd: &Command) -> &'static str {
    match cmd {
        Command::PutPartner(_) => "put_partner",
        Command::CreateKey { .. } => "create_key",
        Command::PutCatalog(_) => "put_catalog",
        Command::PutProvider(_) => "put_provider",
        Command::PutOperator(_) => "put_operator",
        Command::PutPolicy(_) => "put_policy",
        Command::PutMember(_) => "put_member",
        Command::ImportMembers(_) => "import_members",
        Command::CreateBooking(_) => "create_booking",
        Command::Booking { .. } => "booking_action",
        Command::FireTimer { .. } => "fire_timer",
        Command::ClaimCronRun { .. } => "claim_cron_run",
        Command::FinishCronRun { .. } => "finish_cron_run",
        Command::PurgeIdempotency { .. } => "purge_idempotency",
        Command::PutWebhookEndpoint { .. } => "put_webhook_endpoint",
        Command::DeleteWebhookEndpoint { .. } => "delete_webhook_endpoint",
        Command::RecordAttempts(_) => "record_attempts",
        Command::ReplayDelivery { .. } => "replay_delivery",
        Command::ReplayDead { .. } => "replay_dead",
        Command::OpsBookingAction { .. } => "ops_booking_action",
        Command::CaseAction { .. } => "case_action",
        Command::RaiseCase { .. } => "raise_case",
        Command::DecideApproval { .. } => "decide_approval",
        Command::RecordAccess { .. } => "record_access",
    }
}

fn target(kind: &str, id: impl Into<String>) -> Target {
    Target {
        kind: kind.into(),
        id: id.into(),
    }
}

/// The reason a caller gave with a command, if any (kept in the audit entry even when the
/// command is refused).
fn command_reason(cmd: &Command) -> Option<String> {
    use super::BookingAction as A;
    use workflows::case::CaseCommand as C;
    match cmd {
        Command::Booking {
            action: A::Cancel { reason },
            ..
        } => Some(reason.clone()),
        Command::Booking {
            action: A::Reject { reason },
            ..
        } => reason.clone(),
        Command::OpsBookingAction { reason, .. }
        | Command::RaiseCase { reason, .. }
        | Command::DecideApproval { reason, .. } => Some(reason.clone()),
        Command::CaseAction {
            command:
                C::Acknowledge { reason, .. } | C::Escalate { reason, .. } | C::Resolve { reason, .. },
            ..
        } => Some(reason.clone()),
        _ => None,
    }
}

/// The audit action and target of a command, known before it runs.
fn describe(cmd: &Command) -> (String, Target) {
    match cmd {
        Command::PutPartner(p) => ("partner.put".into(), target("partner", p.id.as_str())),
        Command::CreateKey { owner, key_id, .. } => (
            format!("{}.key_created", owner.kind()),
            Target {
                kind: owner.kind().into(),
                id: format!("{}#{key_id}", owner.id()),
            },
        ),
        Command::PutCatalog(s) => ("catalog.put".into(), target("service", s.code.as_str())),
        Command::PutProvider(p) => ("provider.put".into(), target("provider", p.id.as_str())),
        Command::PutOperator(o) => ("operator.put".into(), target("operator", o.id.as_str())),
        Command::PutPolicy(p) => (
            "policy.put".into(),
            target("policy", format!("{}/{}", p.partner_id, p.id)),
        ),
        Command::PutMember(m) => (
            "member.put".into(),
            target("member", format!("{}/{}", m.partner_id, m.id)),
        ),
        Command::ImportMembers(list) => (
            "member.import".into(),
            target(
                "partner",
                list.first()
                    .map(|m| m.partner_id.to_string())
                    .unwrap_or_default(),
            ),
        ),
        Command::CreateBooking(b) => ("booking.create".into(), target("booking", b.id.to_string())),
        Command::Booking { id, action } => (
            format!("booking.{}", action.name()),
            target("booking", id.to_string()),
        ),
        Command::FireTimer { key } => (
            "timer.fired".into(),
            target(
                "booking",
                keys::parse_timer(key)
                    .map(|(_, b, _, _)| uuid::Uuid::from_bytes(b).to_string())
                    .unwrap_or_default(),
            ),
        ),
        Command::ClaimCronRun { job, slot, .. } => (
            "cron.started".into(),
            target("cron_run", format!("{job}@{}", slot.0)),
        ),
        Command::FinishCronRun { job, slot, .. } => (
            "cron.finished".into(),
            target("cron_run", format!("{job}@{}", slot.0)),
        ),
        Command::PurgeIdempotency { .. } => (
            "idempotency.purged".into(),
            target("idempotency_keys", "all"),
        ),
        Command::PutWebhookEndpoint { endpoint, .. } => (
            "webhook_endpoint.put".into(),
            target(
                "webhook_endpoint",
                format!("{}/{}", endpoint.partner_id, endpoint.id),
            ),
        ),
        Command::DeleteWebhookEndpoint { partner, id } => (
            "webhook_endpoint.deleted".into(),
            target("webhook_endpoint", format!("{partner}/{id}")),
        ),
        Command::RecordAttempts(list) => (
            "webhook.attempts".into(),
            target(
                "delivery",
                list.first()
                    .map(|(d, ..)| d.to_string())
                    .unwrap_or_default(),
            ),
        ),
        Command::ReplayDelivery { delivery, .. } => (
            "webhook.replay".into(),
            target("delivery", delivery.to_string()),
        ),
        Command::ReplayDead { partner, .. } => (
            "webhook.replay_dead".into(),
            target("partner", partner.to_string()),
        ),
        Command::OpsBookingAction {
            booking, action, ..
        } => (
            format!("booking.ops.{}", action.name()),
            target("booking", booking.to_string()),
        ),
        Command::CaseAction { case, command } => (
            format!("exception.{}", command.name()),
            target("exception", case.to_string()),
        ),
        Command::RaiseCase { booking, .. } => (
            "exception.raised".into(),
            target("booking", booking.to_string()),
        ),
        Command::DecideApproval {
            approval, approve, ..
        } => (
            if *approve {
                "approval.approved"
            } else {
                "approval.rejected"
            }
            .into(),
            target("approval", approval.to_string()),
        ),
        Command::RecordAccess {
            partner, members, ..
        } => (
            "member.personal_data_read".into(),
            target(
                "member",
                format!(
                    "{partner}/{}",
                    members.first().map(|m| m.as_str()).unwrap_or("")
                ),
            ),
        ),
    }
}

fn dispatch(tx: &mut Tx<'_, '_>) -> Exec<Done> {
    match &tx.req.command {
        Command::PutPartner(p) => admin::put_partner(tx, p),
        Command::CreateKey {
            owner,
            key_id,
            key_hash,
            key_plain,
        } => admin::create_key(tx, owner, key_id, key_hash, key_plain),
        Command::PutCatalog(s) => admin::put_catalog(tx, s),
        Command::PutProvider(p) => admin::put_provider(tx, p),
        Command::PutOperator(o) => admin::put_operator(tx, o),
        Command::PutPolicy(p) => admin::put_policy(tx, p),
        Command::PutMember(m) => admin::put_member(tx, m),
        Command::ImportMembers(list) => admin::import_members(tx, list),
        Command::CreateBooking(b) => bookings::create(tx, b),
        Command::Booking { id, action } => bookings::act(tx, *id, action),
        Command::FireTimer { key } => timers::fire(tx, key),
        Command::ClaimCronRun { job, slot, manual } => cron::claim(tx, job, *slot, *manual),
        Command::FinishCronRun {
            job,
            slot,
            outcome,
            result,
        } => cron::finish(tx, job, *slot, outcome, result),
        Command::PurgeIdempotency { before, max } => cron::purge_idempotency(tx, *before, *max),
        Command::PutWebhookEndpoint { endpoint, secret } => {
            webhooks::put_endpoint(tx, endpoint, secret.as_deref())
        }
        Command::DeleteWebhookEndpoint { partner, id } => {
            webhooks::delete_endpoint(tx, partner, id)
        }
        Command::RecordAttempts(list) => webhooks::record_attempts(tx, list),
        Command::ReplayDelivery { partner, delivery } => webhooks::replay(tx, partner, delivery),
        Command::ReplayDead { partner, since } => {
            webhooks::replay_dead(tx, partner, *since, 10_000)
        }
        Command::OpsBookingAction {
            booking,
            action,
            reason,
        } => ops::booking_action(tx, *booking, action, reason),
        Command::CaseAction { case, command } => ops::case_action(tx, *case, command),
        Command::RaiseCase {
            booking,
            reason,
            severity,
        } => ops::raise_case(tx, *booking, reason, *severity),
        Command::DecideApproval {
            approval,
            approve,
            reason,
        } => ops::decide(tx, approval, *approve, reason),
        Command::RecordAccess {
            partner,
            members,
            via,
        } => ops::record_access(tx, partner, members, via),
    }
}

/// Runs one request. `Err` is a store fault: the caller rolls this command back.
pub(super) fn execute(
    ctx: &EngineContext,
    txn: &mut Txn<'_>,
    head: &mut ChainHead,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, store::Error> {
    let kind = kind_of(&req.command);
    let scope = req.principal.scope();
    let idem_key = req
        .idempotency
        .as_ref()
        .map(|i| keys::scoped(table::IDEMPOTENCY, &scope, i.key.as_bytes()));
    if let (Some(idem), Some(key)) = (&req.idempotency, &idem_key) {
        if let Some(raw) = txn.get_raw(key)? {
            let rec = IdempotencyRecord::decode(&raw)?;
            if rec.fingerprint == idem.fingerprint {
                ctx.metrics
                    .commands
                    .with_label_values(&[kind, "replayed"])
                    .inc();
                return Ok(Reply {
                    status: rec.status,
                    body: Bytes::from(rec.body),
                    replayed: true,
                });
            }
            ctx.metrics
                .commands
                .with_label_values(&[kind, "rejected"])
                .inc();
            return Ok(Reply::error(
                &ApiError::IdempotencyConflict,
                &req.request_id,
            ));
        }
    }

    let (action, target) = describe(&req.command);
    let at = crate::clock::rfc3339(now);
    let mut tx = Tx {
        ctx,
        txn,
        head,
        req,
        now,
        at: at.clone(),
    };
    let savepoint = tx.txn.savepoint();
    let head_before = *tx.head;
    let (status, body, replay_body, draft) = match dispatch(&mut tx) {
        Ok(done) => {
            ctx.metrics
                .commands
                .with_label_values(&[kind, "accepted"])
                .inc();
            let draft = done.audited.then(|| AuditDraft {
                at,
                actor: req.principal.actor(),
                action: done.action.unwrap_or(action),
                target,
                from_state: done.from_state,
                to_state: done.to_state,
                reason: done.reason,
                request_id: Some(req.request_id.clone()),
                outcome: None,
                error: None,
                detail: None,
            });
            (done.status, done.body, done.replay_body, draft)
        }
        Err(Fail::Store(e)) => return Err(e),
        Err(Fail::Api(e)) => {
            // A refused command changes nothing but its own audit entry.
            tx.txn.rollback_to(savepoint);
            *tx.head = head_before;
            ctx.metrics
                .commands
                .with_label_values(&[kind, "rejected"])
                .inc();
            let draft = Some(AuditDraft {
                at,
                actor: req.principal.actor(),
                action,
                target,
                from_state: None,
                to_state: None,
                reason: command_reason(&req.command),
                request_id: Some(req.request_id.clone()),
                outcome: Some("rejected".into()),
                error: Some(e.code().into()),
                detail: match &e {
                    ApiError::Internal(_) => None,
                    other => Some(other.to_string()),
                },
            });
            (e.status(), e.to_problem(&req.request_id), None, draft)
        }
    };
    if let Some(draft) = draft.filter(|_| ctx.audit) {
        audit::append(tx.txn, tx.head, draft)?;
    }
    if let (Some(idem), Some(key)) = (&req.idempotency, idem_key) {
        if status < 500 {
            let rec = IdempotencyRecord {
                fingerprint: idem.fingerprint,
                status,
                body: replay_body.unwrap_or_else(|| body.clone()),
                created_at: now,
            };
            tx.txn.put_raw(key, rec.encode());
            let by_time = keys::compose(
                table::IDEMPOTENCY_BY_TIME,
                &[&(now.0 as u64).to_be_bytes(), scope.as_bytes()],
                idem.key.as_bytes(),
            );
            tx.txn.put_raw(by_time, Vec::new());
        }
    }
    Ok(Reply {
        status,
        body: Bytes::from(body),
        replayed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: Vec<u8>) -> IdempotencyRecord {
        IdempotencyRecord {
            fingerprint: [7; 32],
            status: 201,
            body,
            created_at: Timestamp(1_764_800_000_000),
        }
    }

    #[test]
    fn idempotency_records_round_trip_small_bodies_plain_and_large_ones_compressed() {
        let small = br#"{"id":"x"}"#.to_vec();
        let large = serde_json::to_vec(
            &(0..400)
                .map(|i| serde_json::json!({"provider_id": format!("lab-{i:05}"), "reason": "service_not_offered"}))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for (body, format) in [(small, IDEMPOTENCY_PLAIN), (large, IDEMPOTENCY_LZ4)] {
            let bytes = record(body.clone()).encode();
            assert_eq!(bytes[0], format);
            if format == IDEMPOTENCY_LZ4 {
                assert!(
                    bytes.len() * 3 < body.len(),
                    "{} of {}",
                    bytes.len(),
                    body.len()
                );
            }
            let back = IdempotencyRecord::decode(&bytes).unwrap();
            assert_eq!(back.body, body, "a replay must be byte-identical");
            assert_eq!((back.status, back.fingerprint), (201, [7; 32]));
            assert_eq!(back.created_at, Timestamp(1_764_800_000_000));
        }
    }

    #[test]
    fn a_damaged_compressed_record_is_refused_not_inflated() {
        let mut bytes = record(vec![b'a'; 4096]).encode();
        // A huge declared length must not be allocated.
        bytes[IDEMPOTENCY_HEADER..IDEMPOTENCY_HEADER + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(IdempotencyRecord::decode(&bytes).is_err());
        let mut bytes = record(vec![b'a'; 4096]).encode();
        bytes.truncate(bytes.len() - 3);
        assert!(IdempotencyRecord::decode(&bytes).is_err());
    }
}
