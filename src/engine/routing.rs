//! Choosing a provider for a booking (until the routing issue lands: the nearest provider that
//! can serve it). Reads the network and capacity counters through the batch transaction, so a
//! decision sees every reservation made earlier in the same batch.

use store::keys::{self, table};
use store::Reader;
use workflows::booking::{
    Address, Candidate, Excluded, Exclusion, RouteChoice, RouteTrigger, ScoreComponents, Slot,
};
use workflows::network::{GeoPoint, Provider};
use workflows::time::IST_OFFSET_MS;
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

/// Minutes after India midnight of an instant.
fn india_minute(t: Timestamp) -> i64 {
    (t.0 + IST_OFFSET_MS).rem_euclid(86_400_000) / 60_000
}

/// Whether the whole slot falls inside one opening range of the provider.
pub fn open_at(p: &Provider, slot: Slot) -> bool {
    let Some(week) = &p.open_hours else {
        return true;
    };
    let day = Date::india_of(slot.start);
    if Date::india_of(Timestamp(slot.end.0 - 1)) != day {
        return false; // crosses India midnight
    }
    let (start, end) = (
        india_minute(slot.start),
        india_minute(Timestamp(slot.end.0 - 1)) + 1,
    );
    week[day.weekday() as usize]
        .iter()
        .any(|r| start >= r.open_min as i64 && end <= r.close_min as i64)
}

pub fn capacity_used(txn: &impl Reader, provider: &ProviderId, day: Date) -> store::Result<u32> {
    Ok(txn
        .get::<u32>(&keys::capacity(provider.as_str(), day.0))?
        .unwrap_or(0))
}

/// Decides the next provider for a booking, returning the decision (without terms: pricing
/// adds them) and the chosen provider. Never fails for a client's reason: a booking no
/// provider can serve gets a decision with `provider_id: None` and every exclusion listed.
pub fn decide(
    txn: &impl Reader,
    input: &RouteInput<'_>,
    attempt: u32,
    trigger: RouteTrigger,
    now: Timestamp,
) -> store::Result<(RouteChoice, Option<Provider>)> {
    let day = Date::india_of(input.slot.start);
    let here = match (input.address.lat, input.address.lon) {
        (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
        _ => None,
    };
    let mut candidates: Vec<(Candidate, Provider)> = Vec::new();
    let mut excluded = Vec::new();
    for (_, raw) in txn.scan_prefix_raw(&[table::PROVIDER])? {
        let p: Provider = store::codec::decode(&raw)?;
        let distance_km = here.map(|h| h.distance_km(p.location)).unwrap_or(0.0);
        let in_area = p.serviceable_pincodes.contains(&input.address.pincode)
            || (here.is_some() && distance_km <= p.radius_km);
        let reason = if input.tried.contains(&p.id) {
            Some(Exclusion::AlreadyTried)
        } else if !p.active {
            Some(Exclusion::Inactive)
        } else if !p.offers_all(input.services) {
            Some(Exclusion::ServiceNotOffered)
        } else if !input.allowed_tiers.is_empty() && !input.allowed_tiers.contains(&p.network_tier)
        {
            Some(Exclusion::TierNotInNetwork)
        } else if !in_area {
            Some(Exclusion::OutsideArea)
        } else if !open_at(&p, input.slot) {
            Some(Exclusion::ClosedAtSlot)
        } else if capacity_used(txn, &p.id, day)? >= p.daily_capacity {
            Some(Exclusion::CapacityFull)
        } else {
            None
        };
        match reason {
            Some(reason) => excluded.push(Excluded {
                provider_id: p.id.clone(),
                reason,
            }),
            None => {
                let closeness = 1.0 / (1.0 + distance_km);
                candidates.push((
                    Candidate {
                        provider_id: p.id.clone(),
                        score: closeness,
                        distance_km,
                        components: ScoreComponents {
                            distance: closeness,
                            ..ScoreComponents::default()
                        },
                    },
                    p,
                ))
            }
        }
    }
    // Nearest first; ties broken by provider id so a decision is reproducible.
    candidates.sort_by(|a, b| {
        a.0.distance_km
            .total_cmp(&b.0.distance_km)
            .then_with(|| a.0.provider_id.cmp(&b.0.provider_id))
    });
    let chosen = candidates.first().map(|(_, p)| p.clone());
    Ok((
        RouteChoice {
            attempt,
            trigger,
            decided_at: now,
            provider_id: chosen.as_ref().map(|p| p.id.clone()),
            terms: None,
            candidates: candidates.into_iter().map(|(c, _)| c).collect(),
            excluded,
        },
        chosen,
    ))
}
