//! Webhook commands and the transactional outbox: endpoints, one delivery row per matching
//! endpoint written in the same batch as the event, attempt outcomes, dead letters, replay.

use super::exec::{Done, Exec, Tx};
use crate::error::ApiError;
use crate::webhooks::{Attempt, Delivery, DeliveryStatus, Endpoint, Secret, ROTATION_OVERLAP_MS};
use store::keys::{self, table};
use workflows::case::ExceptionCase;
use workflows::effect::CaseType;
use workflows::{CaseId, PartnerId, Timestamp};

pub(super) fn endpoint_key(partner: &PartnerId, id: &str) -> Vec<u8> {
    crate::engine_endpoint_key(partner, id)
}

fn delivery_key(id: &uuid::Uuid) -> Vec<u8> {
    keys::one(table::DELIVERY, id.as_bytes())
}

/// What an attempt came to, as the dispatcher saw it.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered,
    /// 410 Gone: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Retry after this many milliseconds (jittered), or `None` when attempts are exhausted.
    Failed {
        retry_after_ms: Option<i64>,
    },
}

pub(super) fn put_endpoint(
    tx: &mut Tx<'_, '_>,
    spec: &Endpoint,
    new_secret: Option<&str>,
) -> Exec<Done> {
    let key = endpoint_key(&spec.partner_id, &spec.id);
    let old: Option<Endpoint> = tx.txn.get(&key)?;
    let mut ep = spec.clone();
    ep.updated_at = tx.now;
    ep.disabled = None;
    let (status, shown) = match (old, new_secret) {
        (None, secret) => {
            let s = secret
                .map(str::to_owned)
                .unwrap_or_else(crate::webhooks::generate_secret);
            ep.created_at = tx.now;
            ep.secrets = vec![Secret {
                secret: s.clone(),
                created_at: tx.now,
                expires_at: None,
            }];
            (201, Some(s))
        }
        (Some(old), None) => {
            ep.created_at = old.created_at;
            ep.secrets = old.secrets;
            (200, None)
        }
        (Some(old), Some(s)) => {
            ep.created_at = old.created_at;
            let overlap_end = Timestamp(tx.now.0 + ROTATION_OVERLAP_MS);
            let mut secrets = vec![Secret {
                secret: s.to_owned(),
                created_at: tx.now,
                expires_at: None,
            }];
            for mut prev in old.secrets.into_iter().filter(|p| p.secret != s) {
                prev.expires_at = Some(prev.expires_at.map_or(overlap_end, |e| e.min(overlap_end)));
                if prev.expires_at.is_some_and(|e| e > tx.now) {
                    secrets.push(prev);
                }
            }
            ep.secrets = secrets;
            (200, Some(s.to_owned()))
        }
    };
    tx.txn.put(key, &ep)?;
    let mut view = endpoint_view(&ep, tx.now);
    let mut done = Done::json(status, &{
        let mut v = view.clone();
        v["secret"] = shown
            .clone()
            .map_or(serde_json::Value::Null, serde_json::Value::String);
        v
    })?;
    view["secret"] = serde_json::Value::Null;
    view["note"] = "a secret is shown only when it is set".into();
    done.replay_body = Some(serde_json::to_vec(&view).map_err(ApiError::internal)?);
    Ok(done)
}

pub fn endpoint_view(ep: &Endpoint, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "id": ep.id,
        "url": ep.url,
        "events": ep.events,
        "enabled": ep.disabled.is_none(),
        "disabled_reason": ep.disabled,
        "signing_secrets": ep.signing_secrets(now).count(),
        "created_at": crate::clock::rfc3339(ep.created_at),
        "updated_at": crate::clock::rfc3339(ep.updated_at),
    })
}

pub(super) fn delete_endpoint(tx: &mut Tx<'_, '_>, partner: &PartnerId, id: &str) -> Exec<Done> {
    let key = endpoint_key(partner, id);
    if !tx.txn.contains(&key)? {
        return Err(ApiError::NotFound(format!("webhook endpoint {id}")).into());
    }
    tx.txn.delete(key);
    Done::json(200, &serde_json::json!({ "id": id, "deleted": true }))
}

/// Writes one delivery per endpoint of `partner` that wants `event` (the outbox rows).
pub(super) fn enqueue(
    tx: &mut Tx<'_, '_>,
    partner: &PartnerId,
    event: &str,
    subject: uuid::Uuid,
    booking_id: Option<uuid::Uuid>,
    data: impl FnOnce(&mut Tx<'_, '_>) -> Exec<serde_json::Value>,
) -> Exec<usize> {
    let prefix = keys::scoped(table::WEBHOOK_ENDPOINT, partner.as_str(), &[]);
    let endpoints: Vec<Endpoint> = tx
        .txn
        .scan_prefix_raw(&prefix)?
        .into_iter()
        .map(|(_, v)| store::codec::decode(&v))
        .collect::<Result<_, _>>()?;
    let wanted: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(event)).collect();
    if wanted.is_empty() {
        return Ok(0); // no endpoint wants it: nothing to render
    }
    let data = data(tx)?;
    let event_id = uuid::Uuid::now_v7();
    let body = serde_json::json!({
        "id": event_id.to_string(),
        "type": event,
        "occurred_at": tx.at,
        "partner_id": partner.as_str(),
        "data": data,
    })
    .to_string();
    for ep in &wanted {
        let id = uuid::Uuid::now_v7();
        let chain_prefix =
            keys::delivery_chain_prefix(&ep.id, partner.as_str(), subject.as_bytes());
        // Only the oldest undelivered delivery of a subject is due; the rest wait their turn.
        let first_in_chain = tx.txn.scan_prefix_raw(&chain_prefix)?.is_empty();
        let d = Delivery {
            id,
            partner_id: partner.clone(),
            endpoint_id: ep.id.clone(),
            event_id,
            event_type: event.to_owned(),
            subject,
            booking_id,
            body: body.clone(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: first_in_chain.then_some(tx.now),
            created_at: tx.now,
            updated_at: tx.now,
        };
        tx.txn.put(delivery_key(&id), &d)?;
        tx.txn.put_raw(
            keys::delivery_chain(&ep.id, partner.as_str(), subject.as_bytes(), id.as_bytes()),
            Vec::new(),
        );
        tx.txn.put_raw(
            keys::scoped(table::DELIVERY_BY_PARTNER, partner.as_str(), id.as_bytes()),
            Vec::new(),
        );
        if first_in_chain {
            tx.txn.put_raw(
                keys::delivery_due(tx.now.0 as u64, id.as_bytes()),
                Vec::new(),
            );
        }
    }
    tx.ctx
        .outbox_dirty
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(wanted.len())
}

/// Leaves the chain and makes the next delivery of the same subject due now.
fn advance_chain(tx: &mut Tx<'_, '_>, d: &Delivery) -> Exec<()> {
    let subject = d.subject.as_bytes();
    tx.txn.delete(keys::delivery_chain(
        &d.endpoint_id,
        d.partner_id.as_str(),
        subject,
        d.id.as_bytes(),
    ));
    let prefix = keys::delivery_chain_prefix(&d.endpoint_id, d.partner_id.as_str(), subject);
    let next = tx.txn.scan_prefix_raw(&prefix)?.into_iter().next();
    if let Some((k, _)) = next {
        if let Some(raw) = keys::tail_uuid(&k) {
            let id = uuid::Uuid::from_bytes(raw);
            if let Some(mut n) = tx.txn.get::<Delivery>(&delivery_key(&id))? {
                if n.status == DeliveryStatus::Pending && n.next_attempt_at.is_none() {
                    n.next_attempt_at = Some(tx.now);
                    tx.txn.put_raw(
                        keys::delivery_due(tx.now.0 as u64, id.as_bytes()),
                        Vec::new(),
                    );
                    tx.txn.put(delivery_key(&id), &n)?;
                }
            }
        }
    }
    Ok(())
}

pub(super) fn record_attempt(
    tx: &mut Tx<'_, '_>,
    id: &uuid::Uuid,
    attempt: &Attempt,
    outcome: &AttemptOutcome,
) -> Exec<Done> {
    let Some(mut d): Option<Delivery> = tx.txn.get(&delivery_key(id))? else {
        return Err(ApiError::NotFound(format!("delivery {id}")).into());
    };
    if d.status != DeliveryStatus::Pending {
        let mut done = Done::json(200, &d.view())?;
        done.audited = false; // replayed or finished meanwhile: this attempt's result is moot
        return Ok(done);
    }
    if let Some(due) = d.next_attempt_at {
        tx.txn
            .delete(keys::delivery_due(due.0.max(0) as u64, id.as_bytes()));
    }
    d.attempts.push(attempt.clone());
    d.updated_at = tx.now;
    let metrics = &tx.ctx.metrics;
    let action = match outcome {
        AttemptOutcome::Delivered => {
            d.status = DeliveryStatus::Delivered;
            d.next_attempt_at = None;
            advance_chain(tx, &d)?;
            metrics
                .webhook_deliveries
                .with_label_values(&["delivered"])
                .inc();
            metrics
                .webhook_commit_to_delivery_seconds
                .observe((tx.now.0 - d.created_at.0).max(0) as f64 / 1000.0);
            "webhook.delivered"
        }
        AttemptOutcome::Failed {
            retry_after_ms: Some(ms),
        } => {
            let due = Timestamp(tx.now.0 + (*ms).max(0));
            d.next_attempt_at = Some(due);
            tx.txn
                .put_raw(keys::delivery_due(due.0 as u64, id.as_bytes()), Vec::new());
            metrics
                .webhook_deliveries
                .with_label_values(&["retrying"])
                .inc();
            "webhook.attempt_failed"
        }
        AttemptOutcome::Gone
        | AttemptOutcome::Failed {
            retry_after_ms: None,
        } => {
            d.status = DeliveryStatus::Dead;
            d.next_attempt_at = None;
            advance_chain(tx, &d)?;
            if matches!(outcome, AttemptOutcome::Gone) {
                let key = endpoint_key(&d.partner_id, &d.endpoint_id);
                if let Some(mut ep) = tx.txn.get::<Endpoint>(&key)? {
                    ep.disabled = Some("the receiver answered 410 Gone".into());
                    ep.updated_at = tx.now;
                    tx.txn.put(key, &ep)?;
                }
            }
            open_dead_case(tx, &d)?;
            metrics
                .webhook_deliveries
                .with_label_values(&["dead"])
                .inc();
            "webhook.dead"
        }
    };
    tx.txn.put(delivery_key(id), &d)?;
    let mut done = Done::json(200, &d.view())?;
    done.action = Some(action.into());
    done.to_state = Some(d.status.as_str().into());
    done.reason = Some(match (attempt.status_code, &attempt.error) {
        (Some(code), _) => format!("attempt {} answered {code}", d.attempts.len()),
        (None, Some(e)) => format!("attempt {} failed: {e}", d.attempts.len()),
        (None, None) => format!("attempt {}", d.attempts.len()),
    });
    Ok(done)
}

fn open_dead_case(tx: &mut Tx<'_, '_>, d: &Delivery) -> Exec<()> {
    let case = ExceptionCase::open(
        CaseId(uuid::Uuid::now_v7()),
        CaseType::WebhookDead,
        d.partner_id.clone(),
        d.booking_id.map(workflows::BookingId),
        None,
        format!(
            "{} delivery {} to endpoint {} is dead after {} attempts",
            d.event_type,
            d.id,
            d.endpoint_id,
            d.attempts.len()
        ),
        tx.now,
    );
    // No `exception.opened` webhook about a dead webhook: it could feed on itself.
    super::effects::store_case(tx, &case, false)
}

/// Records a batch of attempts: each delivery moves as in [`record_attempt`] and gets its own
/// audit entry; the command itself is not audited again.
pub(super) fn record_attempts(
    tx: &mut Tx<'_, '_>,
    list: &[(uuid::Uuid, Attempt, AttemptOutcome)],
) -> Exec<Done> {
    let mut recorded = 0usize;
    for (id, attempt, outcome) in list {
        let savepoint = tx.txn.savepoint();
        match record_attempt(tx, id, attempt, outcome) {
            Ok(done) => {
                if done.audited {
                    let action = done
                        .action
                        .clone()
                        .unwrap_or_else(|| "webhook.attempt".into());
                    let target = store::audit::Target {
                        kind: "delivery".into(),
                        id: id.to_string(),
                    };
                    tx.audit_item(&action, target, &done)?;
                }
                recorded += 1;
            }
            Err(super::exec::Fail::Api(e)) => {
                tx.txn.rollback_to(savepoint);
                tracing::warn!(delivery = %id, error = %e, "attempt not recorded");
            }
            Err(fault) => return Err(fault),
        }
    }
    let mut done = Done::json(200, &serde_json::json!({ "recorded": recorded }))?;
    done.audited = false;
    Ok(done)
}

/// Makes deliveries pending and due now (a replay keeps the attempt history).
fn requeue(tx: &mut Tx<'_, '_>, d: &mut Delivery) -> Exec<()> {
    if let Some(due) = d.next_attempt_at {
        tx.txn
            .delete(keys::delivery_due(due.0.max(0) as u64, d.id.as_bytes()));
    }
    d.status = DeliveryStatus::Pending;
    d.next_attempt_at = Some(tx.now);
    d.updated_at = tx.now;
    tx.txn.put_raw(
        keys::delivery_due(tx.now.0 as u64, d.id.as_bytes()),
        Vec::new(),
    );
    tx.txn.put(delivery_key(&d.id), &*d)?;
    tx.ctx
        .outbox_dirty
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(())
}

pub(super) fn replay(tx: &mut Tx<'_, '_>, partner: &PartnerId, id: &uuid::Uuid) -> Exec<Done> {
    let mut d = match tx.txn.get::<Delivery>(&delivery_key(id))? {
        Some(d) if &d.partner_id == partner => d,
        _ => return Err(ApiError::NotFound(format!("delivery {id}")).into()),
    };
    requeue(tx, &mut d)?;
    Done::json(202, &d.view())
}

/// Replays every dead delivery of `partner` created since `since`, at most `max`.
pub(super) fn replay_dead(
    tx: &mut Tx<'_, '_>,
    partner: &PartnerId,
    since: Option<Timestamp>,
    max: usize,
) -> Exec<Done> {
    let prefix = keys::scoped(table::DELIVERY_BY_PARTNER, partner.as_str(), &[]);
    let mut ids = Vec::new();
    for (k, _) in tx.txn.scan_prefix_raw(&prefix)? {
        if let Some(raw) = keys::tail_uuid(&k) {
            ids.push(uuid::Uuid::from_bytes(raw));
        }
    }
    let mut replayed = Vec::new();
    for id in ids {
        if replayed.len() >= max {
            break;
        }
        let Some(mut d) = tx.txn.get::<Delivery>(&delivery_key(&id))? else {
            continue;
        };
        if d.status == DeliveryStatus::Dead && since.is_none_or(|s| d.created_at >= s) {
            requeue(tx, &mut d)?;
            replayed.push(id.to_string());
        }
    }
    Done::json(
        202,
        &serde_json::json!({ "replayed": replayed.len(), "ids": replayed }),
    )
}
