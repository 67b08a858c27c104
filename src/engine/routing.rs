//! Finding and ranking providers for a booking: candidates come from the store's indexes
//! (pincode → providers, geo cell → providers whose radius covers it), never from a scan of
//! the network; the pure ranking lives in `workflows::routing`. Reads go through the batch
//! transaction, so a decision sees every capacity reservation made earlier in the batch.

use std::collections::BTreeSet;
use store::keys::{self, table};
use store::{Reader, Txn};
use workflows::booking::{Address, RouteChoice, RouteTrigger, Slot};
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

/// Providers that list the pincode or whose radius covers the address's grid cell.
pub fn nearby(r: &impl Reader, address: &Address) -> store::Result<Vec<Provider>> {
    let mut ids = BTreeSet::new();
    let by_pin = keys::compose(
        table::PROVIDER_BY_PINCODE,
        &[address.pincode.as_bytes()],
        &[],
    );
    for (k, _) in r.scan_prefix_raw(&by_pin)? {
        ids.insert(k[by_pin.len()..].to_vec());
    }
    if let (Some(lat), Some(lon)) = (address.lat, address.lon) {
        let cell = keys::cell_prefix(routing::cell_of(GeoPoint { lat, lon }));
        for (k, _) in r.scan_prefix_raw(&cell)? {
            ids.insert(k[cell.len()..].to_vec());
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = r.get::<Provider>(&keys::one(table::PROVIDER, &id))? {
            out.push(p);
        }
    }
    Ok(out)
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
    let providers = nearby(r, input.address)?;
    let mut offers = Vec::with_capacity(providers.len());
    for p in &providers {
        offers.push(Offer {
            provider: p,
            used_on_day: capacity_used(r, &p.id, day)?,
        });
    }
    let ranking = routing::rank(
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
    for cell in routing::cells_covered(new) {
        txn.put_raw(keys::provider_by_cell(cell, id), Vec::new());
    }
}
