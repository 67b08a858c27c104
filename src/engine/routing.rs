//! Finding and ranking providers for a booking. Candidates come from the store's in-memory
//! network index (pincode map and geo grid, see `store::network`), never from a scan of the
//! network; the index screens them and the pure `workflows::routing` ranks the survivors.
//! In the committer, capacity counters are read through the batch transaction first, so a
//! decision sees every reservation made earlier in the same batch.

use store::keys::{self, table};
use store::network::NetworkIndex;
use store::Reader;
use workflows::booking::{Address, RouteChoice, RouteTrigger, Slot};
use workflows::network::Provider;
use workflows::routing::{self, Weights};
use workflows::{Date, ProviderId, ServiceCode, Timestamp};

/// What routing needs to know about the booking.
pub struct RouteInput<'a> {
    pub services: &'a [ServiceCode],
    pub address: &'a Address,
    pub slot: Slot,
    pub tried: &'a [ProviderId],
    /// Allowed network tiers; empty = every tier.
    pub allowed_tiers: &'a [String],
}

pub fn capacity_used(r: &impl Reader, provider: &ProviderId, day: Date) -> store::Result<u32> {
    Ok(r.get::<u32>(&keys::capacity(provider.as_str(), day.0))?
        .unwrap_or(0))
}

/// The batch's pending capacity counters of `day`: (provider id, value; `None` = deleted).
fn pending_counters(r: &impl Reader, day: Date) -> Vec<(&[u8], Option<&[u8]>)> {
    let tail = keys::capacity("", day.0);
    let tail = &tail[tail.len() - 5..]; // `0 ‖ day`
    r.pending_under(&[table::CAPACITY])
        .into_iter()
        .filter(|(k, _)| k.len() > tail.len() && k.ends_with(tail))
        .map(|(k, v)| (&k[1..k.len() - tail.len()], v))
        .collect()
}

/// A provider's bookings on `day`: the batch's pending counter, else the index's, else (a day
/// the index has dropped) the store's.
fn used_on(
    r: &impl Reader,
    net: &NetworkIndex,
    pending: &[(&[u8], Option<&[u8]>)],
    entry: u32,
    provider: &ProviderId,
    day: Date,
) -> store::Result<u32> {
    let id = provider.as_str().as_bytes();
    if let Some((_, v)) = pending.iter().find(|(p, _)| *p == id) {
        return Ok(match v {
            Some(bytes) => store::codec::decode(bytes)?,
            None => 0,
        });
    }
    match net.used(entry, day.0) {
        Some(used) => Ok(used),
        None => capacity_used(r, provider, day),
    }
}

/// Decides the next provider for a booking, returning the decision (without terms: pricing
/// adds them) and the chosen provider. Never fails for a client's reason: a booking no
/// provider can serve gets a decision with `provider_id: None` and its exclusions listed.
pub fn decide(
    r: &impl Reader,
    input: &RouteInput<'_>,
    weights: &Weights,
    attempt: u32,
    trigger: RouteTrigger,
    now: Timestamp,
) -> store::Result<(RouteChoice, Option<Provider>)> {
    // The index is the committed network: a provider written earlier in this batch would be
    // invisible to it. The committer never lets a routing command follow one (a batch ends
    // after a network write), so this only fires if that rule is broken.
    if r.has_pending_under(&[table::PROVIDER]) {
        return Err(store::Error::Corrupt(
            "routing in a batch that changed the network before committing it".into(),
        ));
    }
    let day = Date::india_of(input.slot.start);
    let req = routing::Request {
        services: input.services,
        address: input.address,
        slot: input.slot,
        tried: input.tried,
        allowed_tiers: input.allowed_tiers,
    };
    let net = r.store().network();
    let short = net.shortlist(&req);
    let pending = pending_counters(r, day);
    let mut offers = Vec::with_capacity(short.passed.len());
    for p in &short.passed {
        offers.push(p.offer(used_on(r, &net, &pending, p.entry, &p.provider.id, day)?));
    }
    let ranking = routing::rank_with(&req, &offers, short.excluded, weights);
    let chosen = ranking.candidates.first().and_then(|c| {
        offers
            .iter()
            .find(|o| o.provider.id == c.provider_id)
            .map(|o| o.provider.clone())
    });
    Ok((
        RouteChoice {
            attempt,
            trigger,
            decided_at: now,
            provider_id: chosen.as_ref().map(|p| p.id.clone()),
            terms: None,
            candidates: ranking.candidates,
            excluded: ranking.excluded,
        },
        chosen,
    ))
}
