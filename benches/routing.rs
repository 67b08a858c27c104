//! Routing benchmark, in process: `engine::routing::decide` against a temporary sled store
//! holding a synthetic network of 10,000 providers over 20,000 pincodes in 10 Indian cities.
//!
//! ```sh
//! cargo bench --bench routing -- --warm-up-time 2 --measurement-time 5
//! ```
//!
//! Criterion measures (means, decisions/s via `Throughput::Elements(1)`):
//! - `decide/store/random`: `decide(&store, …)` on random booking requests (the dry-run path);
//! - `decide/txn/random`: the same through an empty `Txn`; `decide/txn_busy/random` through a
//!   `Txn` holding a batch's worth (64) of pending capacity counters (the committer's path at
//!   booking create: counters are read from the batch overlay first);
//! - `decide/store/typical`, `shortlist/typical`, `rank_with/typical`, `rank_all/typical`:
//!   one request with the median number of nearby providers: the whole decision, the index's
//!   screening alone, the pure ranking of the survivors alone, and (the reference the
//!   screening must agree with) the pure `rank` of every nearby provider.
//!
//! After criterion, a plain timing loop times `ROUTING_LATENCY_N` (default 100,000) decisions
//! one by one and prints p50/p90/p99/p99.9/max, stopping early after `ROUTING_LATENCY_SECS`
//! (default 60) seconds; `ROUTING_LATENCY_N=0` skips it. Under `cargo test --benches`
//! (no `--bench` argument) the network is scaled down 20x and the loop runs 1,000 decisions,
//! so that run only proves the bench still builds and runs.

use criterion::{Criterion, Throughput};
use dxstack::engine::routing::{self, RouteInput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use store::keys::{self, table};
use store::{Store, StoreConfig};
use workflows::booking::{Address, RouteTrigger, Slot};
use workflows::network::{GeoPoint, OpenRange, Provider, ProviderKind};
use workflows::routing::{Offer, Request, Weights};
use workflows::{Date, Millis, Paise, ProviderId, ServiceCode, Timestamp};

/// The server's allocator (`src/main.rs`), so allocation costs are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A city: name, pincode prefix (2 digits), centre, spread (σ km north, σ km east), share of
/// the network in ‰ (the same share of providers and of pincodes).
struct City {
    code: &'static str,
    pin_prefix: u32,
    lat: f64,
    lon: f64,
    sigma_km: (f64, f64),
    share: u32,
}

const CITIES: [City; 10] = [
    city("del", 11, 28.6139, 77.2090, (12.0, 12.0), 160),
    city("bom", 40, 19.0760, 72.8777, (12.0, 5.0), 150),
    city("blr", 56, 12.9716, 77.5946, (8.0, 8.0), 130),
    city("maa", 60, 13.0827, 80.2707, (9.0, 5.0), 100),
    city("hyd", 50, 17.3850, 78.4867, (8.0, 8.0), 100),
    city("ccu", 70, 22.5726, 88.3639, (8.0, 5.0), 100),
    city("pnq", 41, 18.5204, 73.8567, (6.0, 6.0), 80),
    city("amd", 38, 23.0225, 72.5714, (6.0, 6.0), 70),
    city("jai", 30, 26.9124, 75.7873, (5.0, 5.0), 55),
    city("lko", 22, 26.8467, 80.9462, (5.0, 5.0), 55),
];

const fn city(
    code: &'static str,
    pin_prefix: u32,
    lat: f64,
    lon: f64,
    sigma_km: (f64, f64),
    share: u32,
) -> City {
    City {
        code,
        pin_prefix,
        lat,
        lon,
        sigma_km,
        share,
    }
}

/// Service catalog: code and base rate in rupees, most requested first (both the offer and
/// the request draws are weighted 1/(rank+1)).
const CATALOG: [(&str, i64); 20] = [
    ("CBC", 400),
    ("LIPID", 650),
    ("HBA1C", 550),
    ("TSH", 500),
    ("FBS", 150),
    ("LFT", 700),
    ("KFT", 700),
    ("VITD", 1200),
    ("VITB12", 900),
    ("URINE", 200),
    ("PPBS", 150),
    ("ESR", 150),
    ("CRP", 600),
    ("IRON", 800),
    ("T3T4", 600),
    ("ECG", 350),
    ("DENGUE", 900),
    ("XRAYCHEST", 500),
    ("USGABD", 1500),
    ("CONSULTGP", 500),
];

struct Pincode {
    code: String,
    at: GeoPoint,
}

/// A pre-generated booking request (owned; `RouteInput` borrows from it).
struct Ask {
    services: Vec<ServiceCode>,
    address: Address,
    slot: Slot,
}

struct Fixture {
    store: Store,
    _dir: tempfile::TempDir,
    asks: Vec<Ask>,
    tiers: Vec<String>,
    weights: Weights,
    now: Timestamp,
    providers: usize,
    pincodes: usize,
    capacity_keys: usize,
    build: Duration,
}

/// Standard normal draw (Box–Muller; `rand_distr` is not a dependency).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `at` moved by (north, east) kilometres.
fn offset(at: GeoPoint, north_km: f64, east_km: f64) -> GeoPoint {
    GeoPoint {
        lat: at.lat + north_km / 111.0,
        lon: at.lon + east_km / (111.0 * at.lat.to_radians().cos()),
    }
}

/// Index into `CATALOG`, weighted 1/(rank+1).
fn popular_service(rng: &mut StdRng) -> usize {
    let total: f64 = (1..=CATALOG.len()).map(|r| 1.0 / r as f64).sum();
    let mut x = rng.gen_range(0.0..total);
    for i in 0..CATALOG.len() {
        x -= 1.0 / (i + 1) as f64;
        if x <= 0.0 {
            return i;
        }
    }
    CATALOG.len() - 1
}

fn code(i: usize) -> ServiceCode {
    ServiceCode::parse(CATALOG[i].0).expect("catalog code")
}

/// India midnight of 2030-01-01 (a Tuesday): the bench's "now"; slots fall in the next 7 days.
fn day0() -> Date {
    Date::from_ymd(2030, 1, 1).expect("date")
}

fn slot_of(day: i32, hour: i64) -> Slot {
    let start = Date(day0().0 + day).india_start().0 + hour * 3_600_000;
    Slot {
        start: Timestamp(start),
        end: Timestamp(start + 3_600_000),
    }
}

fn build(scale_div: usize) -> anyhow::Result<Fixture> {
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x0d15_7a7c);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig {
        path: dir.path().join("store"),
        cache_capacity_bytes: 256 << 20,
    })?;
    let total_pins = 20_000 / scale_div;
    let total_providers = 10_000 / scale_div;

    // Pincodes: each city's share, located around its centre.
    let mut pins: Vec<Pincode> = Vec::with_capacity(total_pins);
    let mut city_pins: Vec<Vec<usize>> = vec![Vec::new(); CITIES.len()];
    for (ci, c) in CITIES.iter().enumerate() {
        let n = total_pins * c.share as usize / 1000;
        for j in 0..n {
            let at = offset(
                GeoPoint {
                    lat: c.lat,
                    lon: c.lon,
                },
                normal(&mut rng) * c.sigma_km.0,
                normal(&mut rng) * c.sigma_km.1,
            );
            city_pins[ci].push(pins.len());
            pins.push(Pincode {
                code: format!("{}{:04}", c.pin_prefix, j),
                at,
            });
        }
    }

    let t_create = Timestamp(day0().india_start().0 - 86_400_000 * 30);
    let week_hours: [Vec<OpenRange>; 7] = std::array::from_fn(|d| match d {
        6 => vec![OpenRange {
            open_min: 480,
            close_min: 780,
        }],
        _ => vec![OpenRange {
            open_min: 420,
            close_min: 1260,
        }],
    });
    let mut txn = store.txn();
    let (mut n_providers, mut capacity_keys) = (0, 0);
    for (ci, c) in CITIES.iter().enumerate() {
        let n = total_providers * c.share as usize / 1000;
        let mine = &city_pins[ci];
        for j in 0..n {
            let home = mine[rng.gen_range(0..mine.len())];
            let location = offset(
                pins[home].at,
                normal(&mut rng) * 0.7,
                normal(&mut rng) * 0.7,
            );
            // Serves its home pincode and 1–5 of the 12 nearest others of its city.
            let mut near: Vec<(f64, usize)> = mine
                .iter()
                .filter(|&&p| p != home)
                .map(|&p| (location.distance_km(pins[p].at), p))
                .collect();
            let k = 12.min(near.len());
            if k > 0 {
                near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            }
            near.truncate(k);
            let extra = rng.gen_range(1..=5).min(near.len());
            let mut serves = vec![pins[home].code.clone()];
            for _ in 0..extra {
                let (_, p) = near.swap_remove(rng.gen_range(0..near.len()));
                serves.push(pins[p].code.clone());
            }
            let mut services = BTreeMap::new();
            let n_services = rng.gen_range(1..=5);
            while services.len() < n_services {
                let s = popular_service(&mut rng);
                let rate = CATALOG[s].1 * rng.gen_range(80..=120); // ±20 %, in paise
                services.insert(code(s), Paise(rate));
            }
            let kind = match rng.gen_range(0..10) {
                0..=6 => ProviderKind::Lab,
                7..=8 => ProviderKind::Clinic,
                _ => ProviderKind::Pharmacy,
            };
            let tier = match rng.gen_range(0..10) {
                0..=2 => "gold",
                3..=6 => "silver",
                _ => "bronze",
            };
            let id = format!("{}-{}-{:05}", c.code, kind.as_str(), j);
            let provider = Provider {
                id: ProviderId::parse(&id)?,
                name: format!("{} {} {}", c.code.to_uppercase(), kind.as_str(), j),
                kind,
                network_tier: tier.into(),
                location,
                pincode: pins[home].code.clone(),
                serviceable_pincodes: serves,
                radius_km: rng.gen_range(3.0..=15.0),
                services,
                daily_capacity: rng.gen_range(5..=50),
                accept_within: Millis(30 * 60_000),
                fulfil_grace: Millis(2 * 3_600_000),
                quality_score: (rng.gen_range(1.0f64..=5.0) * 10.0).round() / 10.0,
                active: rng.gen_range(0..100) >= 8, // 8 % inactive
                open_hours: if rng.gen_bool(0.5) {
                    Some(week_hours.clone())
                } else {
                    None
                },
                created_at: t_create,
                updated_at: t_create,
            };
            txn.put(keys::one(table::PROVIDER, id.as_bytes()), &provider)?;
            // Live load: half the providers already have bookings on each of the 7 days.
            for d in 0..7 {
                if rng.gen_bool(0.5) {
                    let used = rng.gen_range(0..=provider.daily_capacity);
                    txn.put(keys::capacity(&id, day0().0 + d), &used)?;
                    capacity_keys += 1;
                }
            }
            n_providers += 1;
        }
    }
    store.commit(txn)?;

    // Requests: a random pincode of the 20,000 at its own location (± 0.5 km), 1–2 services,
    // a one-hour slot 07:00–19:00 India time in the next 7 days.
    let n_asks = if scale_div == 1 { 100_000 } else { 1_000 };
    let asks = (0..n_asks)
        .map(|_| {
            let pin = &pins[rng.gen_range(0..pins.len())];
            let at = offset(pin.at, normal(&mut rng) * 0.5, normal(&mut rng) * 0.5);
            let mut services = vec![code(popular_service(&mut rng))];
            if rng.gen_bool(0.4) {
                let s = code(popular_service(&mut rng));
                if s != services[0] {
                    services.push(s);
                }
            }
            Ask {
                services,
                address: Address {
                    pincode: pin.code.clone(),
                    lat: Some(at.lat),
                    lon: Some(at.lon),
                },
                slot: slot_of(rng.gen_range(0..7), rng.gen_range(7..19)),
            }
        })
        .collect();
    Ok(Fixture {
        store,
        _dir: dir,
        asks,
        // The demo policy's network: gold and silver (bronze is excluded by tier).
        tiers: vec!["gold".into(), "silver".into()],
        weights: Weights::default(),
        now: day0().india_start(),
        providers: n_providers,
        pincodes: pins.len(),
        capacity_keys,
        build: t0.elapsed(),
    })
}

impl Fixture {
    fn request<'a>(&'a self, ask: &'a Ask) -> Request<'a> {
        Request {
            services: &ask.services,
            address: &ask.address,
            slot: ask.slot,
            tried: &[],
            allowed_tiers: &self.tiers,
        }
    }

    fn input<'a>(&'a self, ask: &'a Ask) -> RouteInput<'a> {
        RouteInput {
            services: &ask.services,
            address: &ask.address,
            slot: ask.slot,
            tried: &[],
            allowed_tiers: &self.tiers,
        }
    }

    fn decide(&self, r: &impl store::Reader, ask: &Ask) -> workflows::booking::RouteChoice {
        routing::decide(
            r,
            &self.input(ask),
            &self.weights,
            1,
            RouteTrigger::Initial,
            self.now,
        )
        .expect("decide")
        .0
    }
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

/// Shape of the requests: how many providers each decision screens and ranks, why they are
/// excluded, and how large the decision is once encoded (it is kept in the booking record).
fn describe(f: &Fixture) -> usize {
    let sample = f.asks.len().min(2_000);
    let mut screened: Vec<u64> = Vec::with_capacity(sample);
    let (mut passed, mut eligible, mut routed, mut bytes) = (0usize, 0usize, 0usize, 0usize);
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let net = f.store.network();
    for ask in &f.asks[..sample] {
        let short = net.shortlist(&f.request(ask));
        screened.push(short.screened as u64);
        passed += short.passed.len();
        let choice = f.decide(&f.store, ask);
        eligible += choice.candidates.len();
        routed += usize::from(choice.provider_id.is_some());
        for e in &choice.excluded {
            *reasons.entry(e.reason.as_str()).or_default() += 1;
        }
        bytes += store::codec::encode(&choice).expect("encode").len();
    }
    // The grid must find every provider that can serve: ranking the whole network by brute
    // force must give the same candidates, in the same order.
    let everyone: Vec<std::sync::Arc<Provider>> = f
        .store
        .scan_prefix(&[table::PROVIDER])
        .map(|kv| {
            let (_, v) = kv.expect("scan");
            std::sync::Arc::new(store::codec::decode::<Provider>(&v).expect("decode"))
        })
        .collect();
    for ask in f.asks.iter().take(200) {
        let day = Date::india_of(ask.slot.start).0;
        let offers: Vec<Offer<'_>> = everyone
            .iter()
            .map(|p| {
                let used = net
                    .nearby(&ask.address)
                    .iter()
                    .find(|(_, q)| q.id == p.id)
                    .map_or(0, |&(e, _)| net.used(e, day).expect("in memory"));
                Offer::new(p, used)
            })
            .collect();
        let brute = workflows::routing::rank(&f.request(ask), &offers, &f.weights);
        assert_eq!(
            brute.candidates,
            f.decide(&f.store, ask).candidates,
            "the index missed a provider that can serve {:?}",
            ask.address
        );
    }
    drop(net);
    let mut sorted = screened.clone();
    sorted.sort_unstable();
    let s = sample as f64;
    println!(
        "network: {} providers, {} pincodes, {} capacity counters; built and committed in \
         {:.2} s",
        f.providers,
        f.pincodes,
        f.capacity_keys,
        f.build.as_secs_f64()
    );
    println!(
        "requests ({sample} sampled): providers screened per decision mean {:.0} p50 {} p99 {} \
         max {}; passed the screens (ranked) mean {:.1}; eligible mean {:.1}; routed {:.1} %; \
         encoded RouteChoice mean {:.1} KB",
        screened.iter().sum::<u64>() as f64 / s,
        pct(&sorted, 0.5),
        pct(&sorted, 0.99),
        sorted[sorted.len() - 1],
        passed as f64 / s,
        eligible as f64 / s,
        routed as f64 * 100.0 / s,
        bytes as f64 / s / 1024.0,
    );
    let per: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{r} {:.1}", *n as f64 / s))
        .collect();
    println!(
        "exclusions kept per decision (the first {} by id): {}",
        workflows::routing::DECISION_LIST_MAX,
        per.join(", ")
    );
    // The "typical" request: the first one with the median number of providers screened.
    let median = pct(&sorted, 0.5);
    screened.iter().position(|&n| n == median).unwrap_or(0)
}

fn criterion_benches(c: &mut Criterion, f: &Fixture, typical: usize) {
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("decide/store/random", |b| {
        b.iter(|| {
            i = (i + 1) % f.asks.len();
            black_box(f.decide(&f.store, &f.asks[i]))
        })
    });
    let txn = f.store.txn();
    g.bench_function("decide/txn/random", |b| {
        b.iter(|| {
            i = (i + 1) % f.asks.len();
            black_box(f.decide(&txn, &f.asks[i]))
        })
    });
    drop(txn);

    // A committer batch: 64 bookings' counters pending in the overlay.
    let mut busy = f.store.txn();
    for ask in f.asks.iter().take(64) {
        let day = Date::india_of(ask.slot.start);
        let net = f.store.network();
        let first = net
            .shortlist(&f.request(ask))
            .passed
            .first()
            .map(|p| p.provider.id.clone());
        drop(net);
        if let Some(id) = first {
            busy.put(keys::capacity(id.as_str(), day.0), &1u32)
                .expect("put");
        }
    }
    g.bench_function("decide/txn_busy/random", |b| {
        b.iter(|| {
            i = (i + 1) % f.asks.len();
            black_box(f.decide(&busy, &f.asks[i]))
        })
    });
    drop(busy);

    let ask = &f.asks[typical];
    let request = f.request(ask);
    g.bench_function("decide/store/typical", |b| {
        b.iter(|| black_box(f.decide(&f.store, black_box(ask))))
    });
    let net = f.store.network();
    g.bench_function("shortlist/typical", |b| {
        b.iter(|| black_box(net.shortlist(black_box(&request))))
    });
    let day = Date::india_of(ask.slot.start).0;
    let short = net.shortlist(&request);
    let offers: Vec<Offer<'_>> = short
        .passed
        .iter()
        .map(|p| p.offer(net.used(p.entry, day).expect("in memory")))
        .collect();
    g.bench_function("rank_with/typical", |b| {
        b.iter(|| {
            black_box(workflows::routing::rank_with(
                &request,
                black_box(&offers),
                short.excluded.clone(),
                &f.weights,
            ))
        })
    });
    let all: Vec<Offer<'_>> = net
        .nearby(&ask.address)
        .into_iter()
        .map(|(e, p)| Offer::new(p, net.used(e, day).expect("in memory")))
        .collect();
    g.bench_function("rank_all/typical", |b| {
        b.iter(|| {
            black_box(workflows::routing::rank(
                &request,
                black_box(&all),
                &f.weights,
            ))
        })
    });
    g.finish();
    let ranked = workflows::routing::rank(&request, &all, &f.weights);
    assert_eq!(
        ranked,
        workflows::routing::rank_with(&request, &offers, short.excluded.clone(), &f.weights),
        "screening changed the decision"
    );
    println!(
        "typical request: pincode {}, services {:?}, {} providers screened, {} passed the \
         screens, {} eligible",
        ask.address.pincode,
        ask.services.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        short.screened,
        short.passed.len(),
        ranked.candidates.len(),
    );
}

/// This thread's time on a CPU and waiting for one (runnable, not running), in ns, from
/// `/proc/thread-self/schedstat`: the box is shared, so decisions per CPU-second is the
/// one-core figure and the wait shows how much others' load inflated the wall times.
fn sched_ns() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// One decision at a time, each timed: criterion reports means, this reports the tail.
fn latency(f: &Fixture, n: usize, budget: Duration) {
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    let sched0 = sched_ns();
    let start = Instant::now();
    for k in 0..n {
        let ask = &f.asks[k % f.asks.len()];
        let t = Instant::now();
        black_box(f.decide(&f.store, ask));
        ns.push(t.elapsed().as_nanos() as u64);
        if k % 1024 == 1023 && start.elapsed() > budget {
            break;
        }
    }
    let wall = start.elapsed();
    let sched1 = sched_ns();
    let done = ns.len();
    ns.sort_unstable();
    println!(
        "latency loop: {done} decisions (decide(&store), random requests, one thread) in {:.2} s \
         = {:.0} decisions/s{}",
        wall.as_secs_f64(),
        done as f64 / wall.as_secs_f64(),
        if done < n {
            " (stopped by the time budget)"
        } else {
            ""
        }
    );
    println!(
        "latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
        us(pct(&ns, 0.50)),
        us(pct(&ns, 0.90)),
        us(pct(&ns, 0.99)),
        us(pct(&ns, 0.999)),
        us(ns[done - 1]),
        ns.iter().sum::<u64>() as f64 / done as f64 / 1_000.0
    );
    if let (Some((cpu0, wait0)), Some((cpu1, wait1))) = (sched0, sched1) {
        let cpu = (cpu1 - cpu0) as f64 / 1e9;
        println!(
            "latency loop CPU: {cpu:.2} s on a CPU = {:.0} decisions per CPU-second; {:.2} s \
             runnable but waiting for a CPU (other load on the machine)",
            done as f64 / cpu,
            (wait1 - wait0) as f64 / 1e9
        );
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) run a smoke test.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let f = build(if bench_mode { 1 } else { 20 })?;
    let typical = describe(&f);
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &f, typical);
    c.final_summary();
    let n = env_num(
        "ROUTING_LATENCY_N",
        if bench_mode { 100_000 } else { 1_000 },
    ) as usize;
    if n > 0 {
        latency(
            &f,
            n,
            Duration::from_secs(env_num("ROUTING_LATENCY_SECS", 60)),
        );
    }
    Ok(())
}
