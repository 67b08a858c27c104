//! Finding and ranking providers for a booking: candidates come from the store's indexes
//! (pincode → providers, geo cell → providers whose radius covers it), never from a scan of
//! the network; the pure ranking lives in `workflows::routing`. Reads go through the batch
//! transaction, so a decision sees every capacity reservation made earlier in the batch.

use std::collections::BTreeSet;
use store::keys::{self, table};
use store::{Reader, Txn};
use workflows::booking::{Address, Excluded, Exclusion, RouteChoice, RouteTrigger, Slot};
use workflows::network::{GeoPoint, Provider};
use workflows::routing::{self, Offer, Weights};
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

/// Providers that list the pincode or whose radius reaches the address, read in full; and the
/// ids of providers indexed in the address's grid cell whose radius does not reach it (they are
/// explained as `outside_area` without reading their records).
pub fn nearby(
    r: &impl Reader,
    address: &Address,
) -> store::Result<(Vec<Provider>, Vec<ProviderId>)> {
    let mut ids = BTreeSet::new();
    let mut outside = BTreeSet::new();
    let by_pin = keys::compose(
        table::PROVIDER_BY_PINCODE,
        &[address.pincode.as_bytes()],
        &[],
    );
    for (k, _) in r.scan_prefix_raw(&by_pin)? {
        ids.insert(k[by_pin.len()..].to_vec());
    }
    if let (Some(lat), Some(lon)) = (address.lat, address.lon) {
        let here = GeoPoint { lat, lon };
        let cell = keys::cell_prefix(routing::cell_of(here));
        for (k, v) in r.scan_prefix_raw(&cell)? {
            // Only providers whose radius reaches the address (the cell is ~28 km wide).
            let reaches = parse_reach(&v).is_none_or(|(at, radius)| here.distance_km(at) <= radius);
            let id = k[cell.len()..].to_vec();
            if reaches {
                ids.insert(id);
            } else {
                outside.insert(id);
            }
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(p) = r.get::<Provider>(&keys::one(table::PROVIDER, id))? {
            out.push(p);
        }
    }
    let outside = outside
        .difference(&ids)
        .filter_map(|id| {
            std::str::from_utf8(id)
                .ok()
                .and_then(|s| ProviderId::parse(s).ok())
        })
        .collect();
    Ok((out, outside))
}

/// Decides the next provider for a booking, returning the decision (without terms: pricing
/// adds them) and the chosen provider. Never fails for a client's reason: a booking no
/// provider can serve gets a decision with `provider_id: None` and every exclusion listed.
pub fn decide(
    r: &impl Reader,
    input: &RouteInput<'_>,
    weights: &Weights,
    attempt: u32,
    trigger: RouteTrigger,
    now: Timestamp,
) -> store::Result<(RouteChoice, Option<Provider>)> {
    let day = Date::india_of(input.slot.start);
    let (providers, outside) = nearby(r, input.address)?;
    let mut offers = Vec::with_capacity(providers.len());
    for p in &providers {
        offers.push(Offer {
            provider: p,
            used_on_day: capacity_used(r, &p.id, day)?,
        });
    }
    let mut ranking = routing::rank(
        &routing::Request {
            services: input.services,
            address: input.address,
            slot: input.slot,
            tried: input.tried,
            allowed_tiers: input.allowed_tiers,
        },
        &offers,
        weights,
    );
    if !outside.is_empty() {
        ranking
            .excluded
            .extend(outside.into_iter().map(|provider_id| Excluded {
                reason: if input.tried.contains(&provider_id) {
                    Exclusion::AlreadyTried
                } else {
                    Exclusion::OutsideArea
                },
                provider_id,
            }));
        ranking
            .excluded
            .sort_by(|a, b| a.provider_id.cmp(&b.provider_id));
        ranking.excluded.truncate(routing::DECISION_LIST_MAX);
    }
    let chosen = ranking
        .candidates
        .first()
        .and_then(|c| providers.iter().find(|p| p.id == c.provider_id).cloned());
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

/// Keeps the pincode and geo-cell indexes of a provider in step with its record.
pub fn reindex(txn: &mut Txn<'_>, old: Option<&Provider>, new: &Provider) {
    let id = new.id.as_str();
    if let Some(old) = old {
        for pc in &old.serviceable_pincodes {
            txn.delete(keys::provider_by_pincode(pc, id));
        }
        for cell in routing::cells_covered(old) {
            txn.delete(keys::provider_by_cell(cell, id));
        }
    }
    for pc in &new.serviceable_pincodes {
        txn.put_raw(keys::provider_by_pincode(pc, id), Vec::new());
    }
    let reach = reach_of(new);
    for cell in routing::cells_covered(new) {
        txn.put_raw(keys::provider_by_cell(cell, id), reach.clone());
    }
}

/// The cell index value: where the provider is and how far it reaches, so a lookup can drop
/// providers whose radius does not reach the address without reading their records.
fn reach_of(p: &Provider) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&p.location.lat.to_be_bytes());
    v.extend_from_slice(&p.location.lon.to_be_bytes());
    v.extend_from_slice(&p.radius_km.to_be_bytes());
    v
}

fn parse_reach(v: &[u8]) -> Option<(GeoPoint, f64)> {
    let f = |i: usize| {
        v.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(f64::from_be_bytes)
    };
    Some((
        GeoPoint {
            lat: f(0)?,
            lon: f(8)?,
        },
        f(16)?,
    ))
}
