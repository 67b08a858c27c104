//! Provider routing, pure: rank the candidate providers for a booking and explain every
//! exclusion. The engine finds the candidates through the store's indexes and passes their
//! day's load in; this module decides.
//!
//! Score = Σ weight × component, every component in 0..1 (higher is better):
//! `distance` = 1 / (1 + km / 5); `quality` = quality / best quality among the eligible;
//! `load` = 1 − used / capacity for the slot's day; `price` = cheapest gross / this gross.
//! Ties are broken by provider id, so the same inputs always give the same decision.

use crate::booking::{Address, Candidate, Excluded, Exclusion, ScoreComponents, Slot};
use crate::ids::{ProviderId, ServiceCode};
use crate::money::Paise;
use crate::network::Provider;
use crate::time::{Date, Timestamp, IST_OFFSET_MS};
use serde::{Deserialize, Serialize};

/// Score weights (config `[routing] weights`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    pub distance: f64,
    pub quality: f64,
    pub load: f64,
    pub price: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            distance: 0.4,
            quality: 0.3,
            load: 0.2,
            price: 0.1,
        }
    }
}

/// What routing needs to know about the booking.
pub struct Request<'a> {
    pub services: &'a [ServiceCode],
    pub address: &'a Address,
    pub slot: Slot,
    pub tried: &'a [ProviderId],
    /// Allowed network tiers; empty = every tier.
    pub allowed_tiers: &'a [String],
}

/// A provider found near the address, offered to the ranking with its load on the slot's day.
pub struct Offer<'a> {
    pub provider: &'a Provider,
    pub used_on_day: u32,
    /// Set when the caller already made [`exclusion`]'s first checks for this request (see
    /// [`Screened`]); `None` = rank checks everything.
    pub screened: Option<Screened>,
}

/// A caller's promise that a provider passed [`exclusion`]'s already-tried, active, service,
/// tier and area checks for the request, with the great-circle distance it computed (so the
/// ranking neither repeats them nor the distance). `store::network` screens this way and
/// property-tests that ranking its offers equals ranking every provider unscreened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Screened {
    pub distance_km: Option<f64>,
    /// [`Provider::gross`] of the request's services.
    pub gross: Paise,
}

impl<'a> Offer<'a> {
    /// An offer the ranking checks in full.
    pub fn new(provider: &'a Provider, used_on_day: u32) -> Offer<'a> {
        Offer {
            provider,
            used_on_day,
            screened: None,
        }
    }
}

/// The decision: eligible providers best first, and why the others were left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranking {
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

/// Minutes after India midnight of an instant.
fn india_minute(t: Timestamp) -> i64 {
    (t.0 + IST_OFFSET_MS).rem_euclid(86_400_000) / 60_000
}

/// Whether the whole slot falls inside one opening range of the provider (India time).
pub fn open_at(p: &Provider, slot: Slot) -> bool {
    let Some(week) = &p.open_hours else {
        return true;
    };
    let day = Date::india_of(slot.start);
    let last = Timestamp(slot.end.0 - 1);
    if Date::india_of(last) != day {
        return false; // crosses India midnight
    }
    let (start, end) = (india_minute(slot.start), india_minute(last) + 1);
    week[day.weekday() as usize]
        .iter()
        .any(|r| start >= r.open_min as i64 && end <= r.close_min as i64)
}

/// Why `p` cannot take the booking, if it cannot.
pub fn exclusion(
    req: &Request<'_>,
    p: &Provider,
    used: u32,
    distance_km: Option<f64>,
) -> Option<Exclusion> {
    let in_area = p
        .serviceable_pincodes
        .iter()
        .any(|pc| pc == &req.address.pincode)
        || distance_km.is_some_and(|d| d <= p.radius_km);
    if req.tried.contains(&p.id) {
        Some(Exclusion::AlreadyTried)
    } else if !p.active {
        Some(Exclusion::Inactive)
    } else if !p.offers_all(req.services) {
        Some(Exclusion::ServiceNotOffered)
    } else if !req.allowed_tiers.is_empty() && !req.allowed_tiers.contains(&p.network_tier) {
        Some(Exclusion::TierNotInNetwork)
    } else if !in_area {
        Some(Exclusion::OutsideArea)
    } else {
        last_exclusion(req, p, used)
    }
}

/// [`exclusion`]'s checks after the area one: opening hours, then the day's capacity.
fn last_exclusion(req: &Request<'_>, p: &Provider, used: u32) -> Option<Exclusion> {
    if !open_at(p, req.slot) {
        Some(Exclusion::ClosedAtSlot)
    } else if used >= p.daily_capacity {
        Some(Exclusion::CapacityFull)
    } else {
        None
    }
}

/// Ranks `options` for `req`.
pub fn rank(req: &Request<'_>, options: &[Offer<'_>], w: &Weights) -> Ranking {
    rank_with(req, options, Vec::new(), w)
}

/// Ranks `options` for `req`, adding `excluded` (providers a caller already excluded with
/// [`exclusion`]'s reasons, **in provider-id order**) to the explanation. The stored lists
/// keep the first [`DECISION_LIST_MAX`] exclusions by provider id, so a caller that excluded
/// many may pass only its first `DECISION_LIST_MAX` and get the same decision as passing all.
pub fn rank_with(
    req: &Request<'_>,
    options: &[Offer<'_>],
    excluded: Vec<Excluded>,
    w: &Weights,
) -> Ranking {
    let here = req.address.point();
    let mut eligible: Vec<(&Provider, f64, u32, Paise)> = Vec::new();
    let mut own = Vec::new();
    for o in options {
        let p = o.provider;
        let (d, gross, reason) = match o.screened {
            Some(s) => (
                s.distance_km,
                s.gross,
                last_exclusion(req, p, o.used_on_day),
            ),
            None => {
                let d = here.map(|h| h.distance_km(p.location));
                (
                    d,
                    p.gross(req.services),
                    exclusion(req, p, o.used_on_day, d),
                )
            }
        };
        match reason {
            Some(reason) => own.push(Excluded {
                provider_id: p.id.clone(),
                reason,
            }),
            None => eligible.push((p, d.unwrap_or(0.0), o.used_on_day, gross)),
        }
    }
    let best_quality = eligible
        .iter()
        .map(|(p, ..)| p.quality_score)
        .fold(0.0f64, f64::max);
    let cheapest = eligible.iter().map(|(.., g)| g.0).min().unwrap_or(0);
    let mut candidates: Vec<Candidate> = eligible
        .into_iter()
        .map(|(p, d, used, gross)| {
            let components = ScoreComponents {
                distance: 1.0 / (1.0 + d / 5.0),
                quality: if best_quality > 0.0 {
                    p.quality_score / best_quality
                } else {
                    1.0
                },
                load: if p.daily_capacity == 0 {
                    0.0
                } else {
                    1.0 - used as f64 / p.daily_capacity as f64
                },
                price: if gross.0 > 0 {
                    cheapest as f64 / gross.0 as f64
                } else {
                    1.0
                },
            };
            let score = w.distance * components.distance
                + w.quality * components.quality
                + w.load * components.load
                + w.price * components.price;
            Candidate {
                provider_id: p.id.clone(),
                score,
                distance_km: d,
                components,
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.provider_id.cmp(&b.provider_id))
    });
    // A decision is stored with the booking: keep it readable and bounded.
    candidates.truncate(DECISION_LIST_MAX);
    let by_id = |a: &Excluded, b: &Excluded| a.provider_id.cmp(&b.provider_id);
    debug_assert!(excluded.is_sorted_by(|a, b| by_id(a, b).is_le()));
    own.sort_by(by_id);
    Ranking {
        candidates,
        excluded: merge_first(excluded, own, DECISION_LIST_MAX, by_id),
    }
}

/// The first `max` of two sorted lists, merged in order.
fn merge_first<T>(
    a: Vec<T>,
    b: Vec<T>,
    max: usize,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut out = Vec::with_capacity(max.min(a.len() + b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while out.len() < max {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => cmp(x, y).is_le(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

/// Candidates and exclusions kept in a stored decision at most (best and first by id).
pub const DECISION_LIST_MAX: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{GeoPoint, ProviderKind};
    use crate::time::Millis;
    use std::collections::BTreeMap;

    fn provider(id: &str, lat: f64, lon: f64, quality: f64, rate: i64) -> Provider {
        let mut services = BTreeMap::new();
        services.insert(ServiceCode::parse("CBC").unwrap(), Paise(rate));
        Provider {
            id: ProviderId::parse(id).unwrap(),
            name: id.into(),
            kind: ProviderKind::Lab,
            network_tier: "gold".into(),
            location: GeoPoint { lat, lon },
            pincode: "560001".into(),
            serviceable_pincodes: vec!["560001".into()],
            radius_km: 10.0,
            services,
            daily_capacity: 10,
            accept_within: Millis(1),
            fulfil_grace: Millis(1),
            quality_score: quality,
            active: true,
            open_hours: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn req<'a>(
        services: &'a [ServiceCode],
        address: &'a Address,
        tiers: &'a [String],
    ) -> Request<'a> {
        Request {
            services,
            address,
            slot: Slot {
                start: Timestamp(0),
                end: Timestamp(3_600_000),
            },
            tried: &[],
            allowed_tiers: tiers,
        }
    }

    #[test]
    fn nearest_wins_when_all_else_is_equal_and_ties_break_by_id() {
        let s = [ServiceCode::parse("CBC").unwrap()];
        let addr = Address {
            pincode: "560001".into(),
            lat: Some(12.97),
            lon: Some(77.59),
        };
        let near = provider("b-near", 12.971, 77.591, 4.0, 100);
        let far = provider("a-far", 13.02, 77.65, 4.0, 100);
        let twin = provider("a-near", 12.971, 77.591, 4.0, 100);
        let opts = [
            Offer::new(&far, 0),
            Offer::new(&near, 0),
            Offer::new(&twin, 0),
        ];
        let r = rank(&req(&s, &addr, &[]), &opts, &Weights::default());
        let ids: Vec<_> = r
            .candidates
            .iter()
            .map(|c| c.provider_id.as_str())
            .collect();
        assert_eq!(ids, ["a-near", "b-near", "a-far"]);
    }

    #[test]
    fn every_exclusion_reason_is_explained() {
        let s = [ServiceCode::parse("CBC").unwrap()];
        let addr = Address {
            pincode: "560001".into(),
            lat: Some(12.97),
            lon: Some(77.59),
        };
        let tiers = vec!["gold".to_string()];
        let mut inactive = provider("inactive", 12.97, 77.59, 4.0, 100);
        inactive.active = false;
        let mut no_service = provider("no-service", 12.97, 77.59, 4.0, 100);
        no_service.services.clear();
        let mut silver = provider("silver", 12.97, 77.59, 4.0, 100);
        silver.network_tier = "silver".into();
        let mut far = provider("far", 19.0, 72.8, 4.0, 100);
        far.serviceable_pincodes.clear();
        let mut closed = provider("closed", 12.97, 77.59, 4.0, 100);
        closed.open_hours = Some(Default::default());
        let full = provider("full", 12.97, 77.59, 4.0, 100);
        let tried = provider("tried", 12.97, 77.59, 4.0, 100);
        let tried_ids = [tried.id.clone()];
        let mut r = req(&s, &addr, &tiers);
        r.tried = &tried_ids;
        let opts: Vec<Offer> = [&inactive, &no_service, &silver, &far, &closed, &tried]
            .into_iter()
            .map(|p| Offer::new(p, 0))
            .chain(std::iter::once(Offer::new(&full, 10)))
            .collect();
        let ranking = rank(&r, &opts, &Weights::default());
        assert!(ranking.candidates.is_empty());
        let reasons: BTreeMap<_, _> = ranking
            .excluded
            .iter()
            .map(|e| (e.provider_id.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(reasons["inactive"], "inactive");
        assert_eq!(reasons["no-service"], "service_not_offered");
        assert_eq!(reasons["silver"], "tier_not_in_network");
        assert_eq!(reasons["far"], "outside_area");
        assert_eq!(reasons["closed"], "closed_at_slot");
        assert_eq!(reasons["full"], "capacity_full");
        assert_eq!(reasons["tried"], "already_tried");
    }
}
