//! The provider network held in memory for routing, derived from the committed `PROVIDER`
//! and `CAPACITY` tables.
//!
//! A routing decision runs on the committer thread at every booking create and re-route, so
//! it must neither scan the network nor read and decode provider records. This index finds
//! the providers that could serve an address (a pincode map and a geo grid), screens them
//! with bit masks (tried, active, services, tier) and a great-circle check (area), and holds
//! the providers' day counters.
//!
//! # Contract
//! - It equals the committed tables: it is loaded at [`Store::open`](crate::Store::open) and
//!   changed only by [`Store::commit`](crate::Store::commit), from the batch's own writes.
//!   Readers that must see a batch's pending writes (the committer) read pending capacity
//!   counters from the [`Txn`](crate::Txn) first; the committer never routes in a batch after
//!   a provider write (see `src/engine/committer.rs`).
//! - [`NetworkIndex::shortlist`] excludes exactly as [`workflows::routing::exclusion`] does
//!   for the checks it makes (already tried, inactive, service, tier, area, in that order);
//!   the survivors go through the pure ranking, which checks the rest. The equivalence with
//!   ranking every nearby provider is property-tested below.

use crate::{codec, keys::table, Error, Result};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use workflows::booking::{Address, Excluded, Exclusion};
use workflows::network::{GeoPoint, Provider, Spot};
use workflows::routing::{Offer, Request, Screened, DECISION_LIST_MAX};
use workflows::{Paise, ProviderId};

/// Grid levels, cell size in degrees. A provider is indexed at the finest level where the
/// bounding box of its radius spans at most `SPAN_MAX` cells each way (so a 15 km radius
/// touches about 16 cells of 0.05°), and in the `wide` list when no level fits.
const LEVELS: [f64; 3] = [0.05, 0.5, 5.0];
const SPAN_MAX: i32 = 16;
/// Kilometres per degree of latitude, rounded down so a bounding box is never too small.
const KM_PER_DEG: f64 = 110.0;

type Cell = (i32, i32);

fn cell_at(level: usize, p: GeoPoint) -> Cell {
    let deg = LEVELS[level];
    ((p.lat / deg).floor() as i32, (p.lon / deg).floor() as i32)
}

/// The cells of one grid level that a provider's radius can reach. The grid does not wrap at
/// ±180° longitude (the network is in India).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Footprint {
    level: usize,
    lat: (i32, i32),
    lon: (i32, i32),
}

impl Footprint {
    fn of(p: &Provider) -> Option<Footprint> {
        let r = p.radius_km.max(0.0);
        let lat_span = r / KM_PER_DEG;
        // A degree of longitude is shortest on the circle's edge nearest a pole; a circle
        // that comes near a pole spans every longitude: no grid level, the `wide` list.
        let widest_lat = p.location.lat.abs() + lat_span;
        if !widest_lat.is_finite() || widest_lat >= 89.0 {
            return None;
        }
        let lon_span = r / (KM_PER_DEG * widest_lat.to_radians().cos());
        let (lo, hi) = (
            GeoPoint {
                lat: p.location.lat - lat_span,
                lon: p.location.lon - lon_span,
            },
            GeoPoint {
                lat: p.location.lat + lat_span,
                lon: p.location.lon + lon_span,
            },
        );
        (0..LEVELS.len()).find_map(|level| {
            let (a, b) = (cell_at(level, lo), cell_at(level, hi));
            (b.0 - a.0 < SPAN_MAX && b.1 - a.1 < SPAN_MAX).then_some(Footprint {
                level,
                lat: (a.0, b.0),
                lon: (a.1, b.1),
            })
        })
    }

    fn contains(&self, c: Cell) -> bool {
        (self.lat.0..=self.lat.1).contains(&c.0) && (self.lon.0..=self.lon.1).contains(&c.1)
    }

    fn cells(&self) -> impl Iterator<Item = Cell> + '_ {
        (self.lat.0..=self.lat.1)
            .flat_map(move |la| (self.lon.0..=self.lon.1).map(move |lo| (la, lo)))
    }
}

/// Services are numbered as they are first seen; the first 128 have a bit. A booking asking
/// for a later one is screened by each provider's service map instead.
const SERVICE_BITS: u32 = 128;

struct Entry {
    id: ProviderId,
    /// `None` while only a capacity counter names the provider.
    provider: Option<Arc<Provider>>,
    /// `None` = in the `wide` list.
    footprint: Option<Footprint>,
    /// Contract rates by service number (the record's map, without string keys).
    rates: Vec<(u32, Paise)>,
}

/// What the screens read of a provider, kept apart from its record so that screening
/// hundreds of providers touches one small array, not hundreds of records.
#[derive(Clone, Copy, Default)]
struct Screen {
    services: u128,
    at: Spot,
    radius_km: f64,
    tier: u32,
    active: bool,
}

/// The network in memory (see the module docs).
#[derive(Default)]
pub struct NetworkIndex {
    entries: Vec<Entry>,
    /// Parallel to `entries`.
    screens: Vec<Screen>,
    by_id: HashMap<ProviderId, u32>,
    /// The lists of entry numbers below are in provider-id order, so a decision meets the
    /// providers it explains in the order it keeps them.
    by_pincode: HashMap<String, Vec<u32>>,
    grid: [HashMap<Cell, Vec<u32>>; LEVELS.len()],
    wide: Vec<u32>,
    service_numbers: HashMap<workflows::ServiceCode, u32>,
    tier_numbers: HashMap<String, u32>,
    /// Each entry's position in provider-id order (to merge the lists above).
    id_rank: Vec<u32>,
    capacity: HashMap<(u32, i32), u32>,
    /// Counters of days before this one were dropped from memory (read them from the store).
    capacity_floor: i32,
}

/// What [`NetworkIndex::shortlist`] found for a booking.
pub struct Shortlist<'a> {
    /// Providers that passed every screen.
    pub passed: Vec<Passed<'a>>,
    /// The screens' exclusions: the first [`DECISION_LIST_MAX`] by provider id.
    pub excluded: Vec<Excluded>,
    /// Providers screened in all (found near the address).
    pub screened: usize,
}

/// A provider that passed the screens.
pub struct Passed<'a> {
    /// Its entry number, for [`NetworkIndex::used`].
    pub entry: u32,
    pub provider: &'a Arc<Provider>,
    /// Great-circle distance to the address, when it has coordinates.
    pub distance_km: Option<f64>,
    /// The provider's gross price of the booking's services.
    pub gross: Paise,
}

impl<'a> Passed<'a> {
    /// The ranking's offer: screened, with the provider's load on the slot's day.
    pub fn offer(&self, used_on_day: u32) -> Offer<'a> {
        Offer {
            provider: self.provider,
            used_on_day,
            screened: Some(Screened {
                distance_km: self.distance_km,
                gross: self.gross,
            }),
        }
    }
}

/// Writes of one batch to the network tables, decoded before the batch is applied so that a
/// value that cannot be decoded fails the commit instead of leaving the index behind.
#[derive(Default)]
pub(crate) struct NetworkDelta {
    providers: Vec<(ProviderId, Option<Provider>)>,
    counters: Vec<(ProviderId, i32, Option<u32>)>,
}

impl NetworkDelta {
    pub(crate) fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.counters.is_empty()
    }

    /// Adds one write (`value` `None` = delete) if its key is a network table's.
    pub(crate) fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        match key.first() {
            Some(&table::PROVIDER) => {
                let id = parse_id(&key[1..])?;
                let p = value.map(codec::decode::<Provider>).transpose()?;
                self.providers.push((id, p));
            }
            Some(&table::CAPACITY) => {
                // `CAPACITY ‖ provider ‖ 0 ‖ day (i32, sortable)`.
                let Some(split) = key.len().checked_sub(5).filter(|&s| s > 1 && key[s] == 0) else {
                    return Err(Error::Corrupt("capacity key without a day".into()));
                };
                let id = parse_id(&key[1..split])?;
                let day_bytes: [u8; 4] = key[split + 1..]
                    .try_into()
                    .map_err(|_| Error::Corrupt("capacity key without a day".into()))?;
                let day = (u32::from_be_bytes(day_bytes) ^ 0x8000_0000) as i32;
                let used = value.map(codec::decode::<u32>).transpose()?;
                self.counters.push((id, day, used));
            }
            _ => {}
        }
        Ok(())
    }
}

fn parse_id(bytes: &[u8]) -> Result<ProviderId> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| ProviderId::parse(s).ok())
        .ok_or_else(|| Error::Corrupt("a network key names no valid provider id".into()))
}

/// Adds entry `n` to a list kept in provider-id order.
fn insert_by_id(list: &mut Vec<u32>, n: u32, entries: &[Entry]) {
    let id = &entries[n as usize].id;
    if let Err(at) = list.binary_search_by(|m| entries[*m as usize].id.cmp(id)) {
        list.insert(at, n);
    }
}

fn remove_entry(list: &mut Vec<u32>, n: u32) {
    if let Some(at) = list.iter().position(|&m| m == n) {
        list.remove(at);
    }
}

/// The union of lists that are each in id order (by `rank`), in id order.
fn merge_by_rank(streams: &[&[u32]], rank: &[u32]) -> Vec<u32> {
    let mut live: Vec<&[u32]> = streams.iter().copied().filter(|s| !s.is_empty()).collect();
    let mut out = Vec::with_capacity(live.iter().map(|s| s.len()).sum());
    loop {
        match live.len() {
            0 => return out,
            1 => {
                out.extend_from_slice(live[0]);
                return out;
            }
            _ => {
                let mut best = 0;
                for k in 1..live.len() {
                    if rank[live[k][0] as usize] < rank[live[best][0] as usize] {
                        best = k;
                    }
                }
                out.push(live[best][0]);
                live[best] = &live[best][1..];
                if live[best].is_empty() {
                    live.swap_remove(best);
                }
            }
        }
    }
}

impl NetworkIndex {
    pub fn new() -> NetworkIndex {
        NetworkIndex {
            capacity_floor: i32::MIN,
            ..NetworkIndex::default()
        }
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Arc<Provider>> {
        self.by_id
            .get(id)
            .and_then(|&n| self.entries[n as usize].provider.as_ref())
    }

    /// A provider's bookings on `day` (India date), or `None` when that day's counters were
    /// dropped from memory and must be read from the store.
    pub fn used(&self, entry: u32, day: i32) -> Option<u32> {
        (day >= self.capacity_floor).then(|| self.capacity.get(&(entry, day)).copied().unwrap_or(0))
    }

    /// Drops the counters of days before `day` from memory (routing only books days ahead).
    pub fn forget_days_before(&mut self, day: i32) {
        if day > self.capacity_floor {
            self.capacity_floor = day;
            self.capacity.retain(|&(_, d), _| d >= day);
        }
    }

    pub(crate) fn apply(&mut self, delta: NetworkDelta) {
        let known = self.entries.len();
        for (id, p) in delta.providers {
            let n = self.entry_of(&id);
            self.unindex(n);
            if let Some(p) = p {
                self.index(n, p);
            }
        }
        for (id, day, used) in delta.counters {
            if day < self.capacity_floor {
                continue;
            }
            let n = self.entry_of(&id);
            match used {
                Some(u) => self.capacity.insert((n, day), u),
                None => self.capacity.remove(&(n, day)),
            };
        }
        if self.entries.len() != known {
            let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
            order.sort_unstable_by(|a, b| {
                self.entries[*a as usize]
                    .id
                    .cmp(&self.entries[*b as usize].id)
            });
            self.id_rank = vec![0; order.len()];
            for (rank, n) in order.into_iter().enumerate() {
                self.id_rank[n as usize] = rank as u32;
            }
        }
    }

    fn entry_of(&mut self, id: &ProviderId) -> u32 {
        if let Some(&n) = self.by_id.get(id) {
            return n;
        }
        let n = self.entries.len() as u32;
        self.entries.push(Entry {
            id: id.clone(),
            provider: None,
            footprint: None,
            rates: Vec::new(),
        });
        self.screens.push(Screen::default());
        self.by_id.insert(id.clone(), n);
        n
    }

    fn unindex(&mut self, n: u32) {
        let entry = &mut self.entries[n as usize];
        let Some(old) = entry.provider.take() else {
            return;
        };
        let footprint = entry.footprint.take();
        for pc in &old.serviceable_pincodes {
            if let Some(list) = self.by_pincode.get_mut(pc) {
                remove_entry(list, n);
                if list.is_empty() {
                    self.by_pincode.remove(pc);
                }
            }
        }
        match footprint {
            Some(f) => {
                let grid = &mut self.grid[f.level];
                for c in f.cells() {
                    if let Some(list) = grid.get_mut(&c) {
                        remove_entry(list, n);
                        if list.is_empty() {
                            grid.remove(&c);
                        }
                    }
                }
            }
            None => remove_entry(&mut self.wide, n),
        }
    }

    fn index(&mut self, n: u32, p: Provider) {
        let mut services = 0u128;
        let mut rates = Vec::with_capacity(p.services.len());
        for (code, rate) in &p.services {
            let next = self.service_numbers.len() as u32;
            let number = *self.service_numbers.entry(code.clone()).or_insert(next);
            if number < SERVICE_BITS {
                services |= 1 << number;
            }
            rates.push((number, *rate));
        }
        let next = self.tier_numbers.len() as u32;
        let tier = *self
            .tier_numbers
            .entry(p.network_tier.clone())
            .or_insert(next);
        let entries = &self.entries;
        for pc in &p.serviceable_pincodes {
            insert_by_id(self.by_pincode.entry(pc.clone()).or_default(), n, entries);
        }
        let footprint = Footprint::of(&p);
        match footprint {
            Some(f) => {
                for c in f.cells() {
                    insert_by_id(self.grid[f.level].entry(c).or_default(), n, entries);
                }
            }
            None => insert_by_id(&mut self.wide, n, entries),
        }
        self.screens[n as usize] = Screen {
            services,
            at: Spot::of(p.location),
            radius_km: p.radius_km,
            tier,
            active: p.active,
        };
        let entry = &mut self.entries[n as usize];
        entry.footprint = footprint;
        entry.rates = rates;
        entry.provider = Some(Arc::new(p));
    }

    /// Entry numbers of the providers that list the address's pincode or whose grid
    /// footprint holds its point, each once, in provider-id order.
    fn near(&self, address: &Address) -> Vec<u32> {
        let listed: &[u32] = self.by_pincode.get(&address.pincode).map_or(&[], |l| l);
        let Some(here) = address.point() else {
            return listed.to_vec();
        };
        let cells: [Cell; LEVELS.len()] = std::array::from_fn(|l| cell_at(l, here));
        // Listed providers the grid does not already yield for this point.
        let extra: Vec<u32> = listed
            .iter()
            .copied()
            .filter(|&n| match self.entries[n as usize].footprint {
                Some(f) => !f.contains(cells[f.level]),
                None => false,
            })
            .collect();
        let mut streams: [&[u32]; LEVELS.len() + 2] = [&[]; LEVELS.len() + 2];
        for (level, grid) in self.grid.iter().enumerate() {
            streams[level] = grid.get(&cells[level]).map_or(&[], |l| l);
        }
        streams[LEVELS.len()] = &self.wide;
        streams[LEVELS.len() + 1] = &extra;
        merge_by_rank(&streams, &self.id_rank)
    }

    /// Every provider near the address (see `near`), for tests and benchmarks that rank them
    /// all with [`workflows::routing::rank`].
    pub fn nearby(&self, address: &Address) -> Vec<(u32, &Arc<Provider>)> {
        self.near(address)
            .into_iter()
            .filter_map(|n| self.entries[n as usize].provider.as_ref().map(|p| (n, p)))
            .collect()
    }

    /// Screens the providers near the booking's address (see the module contract).
    pub fn shortlist(&self, req: &Request<'_>) -> Shortlist<'_> {
        let near = self.near(req.address);
        let here = req.address.point().map(Spot::of);
        let listed = self.by_pincode.get(&req.address.pincode);
        // The booking's services as bits; `None` when one is offered by nobody.
        let mut wanted: Option<u128> = Some(0);
        let mut by_map = false;
        let mut numbers: Vec<u32> = Vec::with_capacity(req.services.len());
        for code in req.services {
            match self.service_numbers.get(code) {
                Some(&bit) if bit < SERVICE_BITS => wanted = wanted.map(|w| w | 1 << bit),
                Some(_) => by_map = true,
                None => wanted = None,
            }
            numbers.extend(self.service_numbers.get(code));
        }
        // `Provider::gross` without string keys (a passed provider offers every service).
        let gross = |e: &Entry| -> Paise {
            numbers
                .iter()
                .filter_map(|k| e.rates.iter().find(|r| r.0 == *k).map(|r| r.1))
                .sum()
        };
        let tiers: Vec<u32> = req
            .allowed_tiers
            .iter()
            .filter_map(|t| self.tier_numbers.get(t).copied())
            .collect();
        // The allowed tiers as bits, when every tier number fits (else search `tiers`).
        let tier_bits: Option<u64> = tiers
            .iter()
            .try_fold(0u64, |bits, &t| (t < 64).then(|| bits | 1 << t));
        let tier_ok = |t: u32| match tier_bits {
            _ if req.allowed_tiers.is_empty() => true,
            Some(bits) => t < 64 && bits & (1 << t) != 0,
            None => tiers.contains(&t),
        };
        let mut passed = Vec::with_capacity(64);
        let mut excluded: Vec<Excluded> = Vec::with_capacity(DECISION_LIST_MAX);
        for &n in &near {
            let s = &self.screens[n as usize];
            let mut distance = None;
            let record = || self.entries[n as usize].provider.as_ref();
            let offers = match wanted {
                None => false,
                Some(bits) => {
                    s.services & bits == bits
                        && (!by_map || record().is_some_and(|p| p.offers_all(req.services)))
                }
            };
            let reason =
                if !req.tried.is_empty() && req.tried.contains(&self.entries[n as usize].id) {
                    Some(Exclusion::AlreadyTried)
                } else if !s.active {
                    Some(Exclusion::Inactive)
                } else if !offers {
                    Some(Exclusion::ServiceNotOffered)
                } else if !tier_ok(s.tier) {
                    Some(Exclusion::TierNotInNetwork)
                } else {
                    distance = here.map(|h| h.distance_km(&s.at));
                    let in_area = listed.is_some_and(|l| l.contains(&n))
                        || distance.is_some_and(|d| d <= s.radius_km);
                    (!in_area).then_some(Exclusion::OutsideArea)
                };
            match (reason, record()) {
                (_, None) => {} // `near` holds only providers with a record
                // `near` is in id order: the first exclusions are the ones kept.
                (Some(reason), Some(_)) if excluded.len() < DECISION_LIST_MAX => {
                    excluded.push(Excluded {
                        provider_id: self.entries[n as usize].id.clone(),
                        reason,
                    })
                }
                (Some(_), Some(_)) => {}
                (None, Some(provider)) => passed.push(Passed {
                    entry: n,
                    provider,
                    distance_km: distance,
                    gross: gross(&self.entries[n as usize]),
                }),
            }
        }
        Shortlist {
            passed,
            excluded,
            screened: near.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use workflows::booking::Slot;
    use workflows::network::{OpenRange, ProviderKind};
    use workflows::routing::{rank, rank_with, Weights};
    use workflows::{Millis, Paise, ServiceCode, Timestamp};

    const SERVICES: [&str; 5] = ["CBC", "LIPID", "TSH", "FBS", "XRAY"];
    const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

    /// Provider `i` of a test network around `centre`; with `many`, provider 0 also offers
    /// 130 services that sort (and so are numbered) before the real ones, which pushes the
    /// real ones past the service bits.
    fn provider(i: usize, seed: &[u8], centre: (f64, f64), many: bool) -> Provider {
        let b = |k: usize| seed[k % seed.len()] as f64 / 255.0;
        let mut services = BTreeMap::new();
        if many && i == 0 {
            for k in 0..130 {
                services.insert(ServiceCode::parse(&format!("A{k:03}")).unwrap(), Paise(1));
            }
        }
        for (s, code) in SERVICES.iter().enumerate() {
            if seed[(i + s) % seed.len()] % 3 != 0 {
                services.insert(ServiceCode::parse(code).unwrap(), Paise(100 + i as i64));
            }
        }
        let pins: Vec<String> = (0..(seed[i % seed.len()] % 3) as usize)
            .map(|k| format!("5600{:02}", (i + k) % 8))
            .collect();
        Provider {
            id: ProviderId::parse(&format!("p{:03}", (i * 37) % 1000)).unwrap(),
            name: format!("p{i}"),
            kind: ProviderKind::Lab,
            network_tier: TIERS[i % 3].into(),
            location: GeoPoint {
                lat: (centre.0 + 0.4 * (b(i) - 0.5)).clamp(-90.0, 90.0),
                lon: centre.1 + 0.4 * (b(i + 1) - 0.5),
            },
            pincode: "560000".into(),
            serviceable_pincodes: pins,
            // City radii (grid level 0), regional ones (level 1), now and then a huge one.
            radius_km: match i % 17 {
                0 => 900.0,
                1 | 6 | 11 => 30.0 + 370.0 * b(i + 2),
                _ => 2.0 + 20.0 * b(i + 2),
            },
            services,
            daily_capacity: 1 + (seed[(i + 3) % seed.len()] % 4) as u32,
            accept_within: Millis(1),
            fulfil_grace: Millis(1),
            quality_score: 1.0 + 4.0 * b(i + 4),
            active: i % 11 != 0,
            open_hours: (i % 5 == 0).then(|| {
                std::array::from_fn(|_| {
                    vec![OpenRange {
                        open_min: 9 * 60,
                        close_min: 13 * 60,
                    }]
                })
            }),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Screening then ranking the survivors decides exactly what ranking every nearby
        /// provider decides, whatever the network, request and load.
        #[test]
        fn shortlist_then_rank_equals_ranking_everything(
            seed in proptest::collection::vec(any::<u8>(), 8..64),
            n in 1usize..160,
            centre in prop_oneof![
                (12.8f64..13.3, 77.4f64..77.9),
                (-89.9f64..89.9, -170.0f64..170.0),
                (87.0f64..90.0, -170.0f64..170.0),
            ],
            // A wide longitude offset is near only close to a pole.
            offset in (-0.25f64..0.25, prop_oneof![-0.25f64..0.25, -40.0f64..40.0]),
            many in any::<bool>(),
            with_point in any::<bool>(),
            pin in 0u8..9,
            wanted in proptest::collection::btree_set(0usize..6, 1..3),
            tier_mask in 0u8..16,
            tried_k in 0usize..4,
            hour in 0i64..24,
        ) {
            let mut index = NetworkIndex::new();
            let mut delta = NetworkDelta::default();
            let mut providers: Vec<Provider> =
                (0..n).map(|i| provider(i, &seed, centre, many)).collect();
            for (k, p) in providers.iter().enumerate() {
                delta.providers.push((p.id.clone(), Some(p.clone())));
                delta.counters.push((p.id.clone(), 0, Some(seed[k % seed.len()] as u32 % 5)));
            }
            // Counters of providers without a record.
            for k in 0..3 {
                delta.counters.push((ProviderId::parse(&format!("ghost-{k}")).unwrap(), 0, Some(1)));
            }
            index.apply(delta);
            // Re-index some (moved: an update must leave no stale grid or pincode entries)
            // and delete others.
            let mut delta = NetworkDelta::default();
            for p in providers.iter_mut().step_by(7) {
                p.radius_km = 5.0;
                p.location.lat = (p.location.lat - 0.1).clamp(-90.0, 90.0);
                p.serviceable_pincodes = vec!["560003".into()];
                delta.providers.push((p.id.clone(), Some(p.clone())));
            }
            let deleted: Vec<ProviderId> =
                providers.iter().skip(3).step_by(13).map(|p| p.id.clone()).collect();
            for id in &deleted {
                delta.providers.push((id.clone(), None));
            }
            providers.retain(|p| !deleted.contains(&p.id));
            index.apply(delta);
            let (lat, lon) = (
                (centre.0 + offset.0).clamp(-90.0, 90.0),
                centre.1 + offset.1,
            );
            let services: Vec<ServiceCode> = wanted
                .iter()
                .map(|&k| ServiceCode::parse(SERVICES.get(k).copied().unwrap_or("NOBODY")).unwrap())
                .collect();
            let tiers: Vec<String> = TIERS
                .iter()
                .chain(&["platinum"]) // a tier no provider has
                .enumerate()
                .filter(|(k, _)| tier_mask & (1 << k) != 0)
                .map(|(_, t)| t.to_string())
                .collect();
            let address = Address {
                pincode: format!("5600{pin:02}"),
                lat: with_point.then_some(lat),
                lon: with_point.then_some(lon),
            };
            let tried: Vec<ProviderId> = providers.iter().take(tried_k).map(|p| p.id.clone()).collect();
            let req = Request {
                services: &services,
                address: &address,
                slot: Slot { start: Timestamp(hour * 3_600_000), end: Timestamp((hour + 1) * 3_600_000) },
                tried: &tried,
                allowed_tiers: &tiers,
            };
            let w = Weights::default();
            let all: Vec<Offer> = index
                .nearby(&address)
                .into_iter()
                .map(|(e, p)| Offer::new(p, index.used(e, 0).unwrap()))
                .collect();
            let expected = rank(&req, &all, &w);
            let short = index.shortlist(&req);
            let offers: Vec<Offer> = short
                .passed
                .iter()
                .map(|p| p.offer(index.used(p.entry, 0).unwrap()))
                .collect();
            let got = rank_with(&req, &offers, short.excluded.clone(), &w);
            prop_assert_eq!(got, expected);
            // Every provider that can serve the point by radius or pincode is near it.
            for p in &providers {
                let current = index.provider(&p.id).unwrap();
                let reaches = current.serviceable_pincodes.contains(&address.pincode)
                    || address.point().is_some_and(|h| h.distance_km(current.location) <= current.radius_km);
                if reaches {
                    prop_assert!(index.near(&address).iter().any(|&e| index.entries[e as usize].id == p.id));
                }
            }
            // And nothing stale or deleted is: each near entry is a current provider whose
            // pincodes or current footprint yield it, listed once, in id order.
            let near = index.near(&address);
            let ids: Vec<&ProviderId> = near.iter().map(|&e| &index.entries[e as usize].id).collect();
            prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "near is not in strict id order");
            for &e in &near {
                let entry = &index.entries[e as usize];
                let p = entry.provider.as_ref();
                prop_assert!(p.is_some(), "{} has no record but is near", entry.id);
                let p = p.unwrap();
                prop_assert!(!deleted.contains(&p.id));
                let listed = p.serviceable_pincodes.contains(&address.pincode);
                let covered = match (address.point(), entry.footprint) {
                    (Some(h), Some(f)) => f.contains(cell_at(f.level, h)),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                prop_assert!(listed || covered, "{} is near by a stale entry", p.id);
                prop_assert_eq!(Footprint::of(p), entry.footprint);
            }
        }
    }

    #[test]
    fn counters_follow_writes_and_forgotten_days_read_through() {
        let mut index = NetworkIndex::new();
        let mut delta = NetworkDelta::default();
        let key = crate::keys::capacity("lab-1", 20_000);
        delta
            .add(&key, Some(&codec::encode(&3u32).unwrap()))
            .unwrap();
        index.apply(delta);
        let n = index.by_id[&ProviderId::parse("lab-1").unwrap()];
        assert_eq!(index.used(n, 20_000), Some(3));
        assert_eq!(index.used(n, 20_001), Some(0));
        index.forget_days_before(20_001);
        assert_eq!(index.used(n, 20_000), None);
        let mut delta = NetworkDelta::default();
        delta
            .add(&crate::keys::capacity("lab-1", 20_001), None)
            .unwrap();
        index.apply(delta);
        assert_eq!(index.used(n, 20_001), Some(0));
    }
}
