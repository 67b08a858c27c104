#!/usr/bin/env python3
"""Synthetic provider network + booking requests for benches/routing_http (stdlib only).

usage: gen_network.py OUT_DIR [--seed N] [--scale-div D] [--cap-scale K] [--asks N]
                              [--members N] [--days N] [--day0 YYYY-MM-DD]

The same distribution as the in-process criterion bench benches/routing.rs (`build`), drawn
with Python's `random.Random(seed)` instead of Rust's StdRng, so the network is of the same
kind and deterministic for a seed, but not record-for-record the Rust one:

- 10 cities (Delhi, Mumbai, Bengaluru, Chennai, Hyderabad, Kolkata, Pune, Ahmedabad, Jaipur,
  Lucknow), each with a share (per mille) of the pincodes and of the providers;
- 20,000 pincodes (`<2-digit city prefix><4 digits>`), normally distributed around the city
  centre (sigma 5-12 km north/east, Box-Muller);
- 10,000 providers, each at a random pincode of its city (+- 0.7 km, normal), serving that
  pincode and 1-5 (random, without replacement) of the 12 pincodes of its city nearest to it;
  radius 3-15 km (uniform); 1-5 of 20 services drawn with popularity weight 1/(rank+1), rate
  = base rate x 80..120 % (integer percent, in paise); kind lab 70 % / clinic 20 % /
  pharmacy 10 %; tier gold 30 % / silver 40 % / bronze 30 %; 8 % inactive; half with opening
  hours Mon-Sat 07:00-21:00, Sun 08:00-13:00 (India time); daily capacity 5-50 x CAP_SCALE;
  quality 1.0-5.0 (one decimal); SLA accept_within 30m, fulfil_grace 2h; ids
  `<city>-<kind>-<nnnnn>` like the Rust bench.
- requests (`asks`): a random pincode of all pincodes at its location +- 0.5 km (normal), one
  popular service plus, with probability 0.4, a second one (dropped if equal), a one-hour slot
  starting 07:00..18:00 India time on day 0..DAYS-1 after DAY0 (India days).

Not reproduced: the Rust bench's pre-existing bookings (half of the provider-days already
partly used). Over HTTP the network starts empty; capacity is only used by the bench's own
bookings. CAP_SCALE (default 1 here, the run script passes its own) multiplies every daily
capacity so that capacity need not run out during a run.

Writes into OUT_DIR:
  catalog.json    [{code, name, category, report_tat}]        (PUT /v1/admin/catalog/{code})
  providers.jsonl {"id": ..., "body": {...}} per line          (PUT /v1/admin/providers/{id})
  members.csv     roster for POST /v1/members/import (policy id placeholder POLICY_ID)
  asks.jsonl      [pincode, lat, lon, [services], day, hour] per line
  summary.json    counts of what was generated (and a probe pincode with its expected
                  provider count, to check the load)
"""
import argparse
import bisect
import collections
import json
import math
import os
import random
import sys
import time

# code, pincode prefix, centre lat, lon, sigma km (north, east), share per mille
CITIES = [
    ("del", 11, 28.6139, 77.2090, (12.0, 12.0), 160),
    ("bom", 40, 19.0760, 72.8777, (12.0, 5.0), 150),
    ("blr", 56, 12.9716, 77.5946, (8.0, 8.0), 130),
    ("maa", 60, 13.0827, 80.2707, (9.0, 5.0), 100),
    ("hyd", 50, 17.3850, 78.4867, (8.0, 8.0), 100),
    ("ccu", 70, 22.5726, 88.3639, (8.0, 5.0), 100),
    ("pnq", 41, 18.5204, 73.8567, (6.0, 6.0), 80),
    ("amd", 38, 23.0225, 72.5714, (6.0, 6.0), 70),
    ("jai", 30, 26.9124, 75.7873, (5.0, 5.0), 55),
    ("lko", 22, 26.8467, 80.9462, (5.0, 5.0), 55),
]

# code, base rate in rupees; most requested first (weight 1/(rank+1))
CATALOG = [
    ("CBC", 400), ("LIPID", 650), ("HBA1C", 550), ("TSH", 500), ("FBS", 150),
    ("LFT", 700), ("KFT", 700), ("VITD", 1200), ("VITB12", 900), ("URINE", 200),
    ("PPBS", 150), ("ESR", 150), ("CRP", 600), ("IRON", 800), ("T3T4", 600),
    ("ECG", 350), ("DENGUE", 900), ("XRAYCHEST", 500), ("USGABD", 1500), ("CONSULTGP", 500),
]
CATALOG_NAMES = {
    "CBC": "Complete Blood Count", "LIPID": "Lipid Profile", "HBA1C": "HbA1c",
    "TSH": "Thyroid Stimulating Hormone", "FBS": "Fasting Blood Sugar", "LFT": "Liver Function Test",
    "KFT": "Kidney Function Test", "VITD": "Vitamin D", "VITB12": "Vitamin B12",
    "URINE": "Urine Routine", "PPBS": "Post-prandial Blood Sugar", "ESR": "ESR", "CRP": "C-Reactive Protein",
    "IRON": "Iron Studies", "T3T4": "T3 T4", "ECG": "ECG", "DENGUE": "Dengue NS1",
    "XRAYCHEST": "Chest X-Ray", "USGABD": "Ultrasound Abdomen", "CONSULTGP": "GP Consultation",
}
# everything is a lab service except the GP consultation (the policy covers both categories)
CATEGORY = {code: ("consultation" if code == "CONSULTGP" else "lab") for code, _ in CATALOG}

WEEK_HOURS = {d: ["07:00-21:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
WEEK_HOURS["sun"] = ["08:00-13:00"]

_POP_W = [1.0 / (i + 1) for i in range(len(CATALOG))]
_POP_CUM = list(__import__("itertools").accumulate(_POP_W))


def normal(rng):
    """Standard normal draw, Box-Muller (as benches/routing.rs)."""
    u1 = rng.uniform(sys.float_info.epsilon, 1.0)
    u2 = rng.random()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def offset(lat, lon, north_km, east_km):
    return lat + north_km / 111.0, lon + east_km / (111.0 * math.cos(math.radians(lat)))


def distance_km(a_lat, a_lon, b_lat, b_lon):
    """Haversine, mean Earth radius (workflows::network::GeoPoint::distance_km)."""
    la1, la2 = math.radians(a_lat), math.radians(b_lat)
    dla = la2 - la1
    dlo = math.radians(b_lon - a_lon)
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2.0 * 6371.0 * math.asin(math.sqrt(h))


def popular_service(rng):
    x = rng.random() * _POP_CUM[-1]
    return min(bisect.bisect_left(_POP_CUM, x), len(CATALOG) - 1)


class CityGrid:
    """1 km grid over a city's pincodes (planar around the centre) for nearest-k queries."""

    CELL_KM = 1.0

    def __init__(self, c, pins, idx):
        self.lat0, self.lon0 = c[2], c[3]
        self.kx = 111.0 * math.cos(math.radians(self.lat0))
        self.pins, self.cells = pins, collections.defaultdict(list)
        for i in idx:
            self.cells[self._cell(pins[i][1], pins[i][2])].append(i)

    def _cell(self, lat, lon):
        return (math.floor((lat - self.lat0) * 111.0 / self.CELL_KM),
                math.floor((lon - self.lon0) * self.kx / self.CELL_KM))

    def nearest(self, lat, lon, k, exclude):
        """The k pincodes nearest to (lat, lon) by great-circle distance, `exclude` left out.
        Rings of cells are added until k are found within the ring's inner radius, then one
        more ring as a margin for the planar approximation."""
        cy, cx = self._cell(lat, lon)
        found, r, extra = [], 0, None
        total = sum(len(v) for v in self.cells.values()) - 1
        while True:
            ring = ([(cy + dy, cx + dx) for dy in range(-r, r + 1) for dx in (-r, r)]
                    + [(cy + dy, cx + dx) for dx in range(-r + 1, r) for dy in (-r, r)]) if r else [(cy, cx)]
            for cell in ring:
                for i in self.cells.get(cell, ()):
                    if i != exclude:
                        p = self.pins[i]
                        found.append((distance_km(lat, lon, p[1], p[2]), i))
            if extra is None:
                inner = r * self.CELL_KM
                if sum(1 for d, _ in found if d <= inner) >= k or len(found) >= total:
                    extra = r + 1
            elif r >= extra:
                break
            r += 1
            if r > 400:
                break
        found.sort()
        return [i for _, i in found[:k]]


def build(seed, scale_div, cap_scale, n_asks, n_members, days):
    rng = random.Random(seed)
    total_pins, total_prov = 20000 // scale_div, 10000 // scale_div

    pins = []  # (code, lat, lon, city index)
    city_pins = [[] for _ in CITIES]
    for ci, c in enumerate(CITIES):
        n = total_pins * c[5] // 1000
        for j in range(n):
            lat, lon = offset(c[2], c[3], normal(rng) * c[4][0], normal(rng) * c[4][1])
            city_pins[ci].append(len(pins))
            pins.append((f"{c[1]}{j:04d}", lat, lon, ci))

    providers = []
    for ci, c in enumerate(CITIES):
        n = total_prov * c[5] // 1000
        mine = city_pins[ci]
        grid = CityGrid(c, pins, mine)
        for j in range(n):
            home = mine[rng.randrange(len(mine))]
            lat, lon = offset(pins[home][1], pins[home][2], normal(rng) * 0.7, normal(rng) * 0.7)
            near = grid.nearest(lat, lon, 12, exclude=home)
            extra = min(rng.randint(1, 5), len(near))
            serves = [pins[home][0]]
            for _ in range(extra):
                serves.append(pins[near.pop(rng.randrange(len(near)))][0])
            services = {}
            n_services = rng.randint(1, 5)
            while len(services) < n_services:
                s = popular_service(rng)
                services[CATALOG[s][0]] = {"rate_paise": CATALOG[s][1] * rng.randint(80, 120)}
            k = rng.randrange(10)
            kind = "lab" if k <= 6 else ("clinic" if k <= 8 else "pharmacy")
            t = rng.randrange(10)
            tier = "gold" if t <= 2 else ("silver" if t <= 6 else "bronze")
            pid = f"{c[0]}-{kind}-{j:05d}"
            body = {
                "name": f"{c[0].upper()} {kind} {j}",
                "kind": kind,
                "network_tier": tier,
                "location": {"lat": round(lat, 6), "lon": round(lon, 6), "pincode": pins[home][0]},
                "serviceable_pincodes": serves,
                "radius_km": round(rng.uniform(3.0, 15.0), 3),
                "services": dict(sorted(services.items())),
                "daily_capacity": rng.randint(5, 50) * cap_scale,
                "sla": {"accept_within": "30m", "fulfil_grace": "2h"},
                "quality_score": round(rng.uniform(1.0, 5.0) * 10.0) / 10.0,
                "active": rng.randrange(100) >= 8,
            }
            if rng.random() < 0.5:
                body["open_hours"] = WEEK_HOURS
            providers.append((pid, body))

    asks = []
    for _ in range(n_asks):
        pin = pins[rng.randrange(len(pins))]
        lat, lon = offset(pin[1], pin[2], normal(rng) * 0.5, normal(rng) * 0.5)
        services = [CATALOG[popular_service(rng)][0]]
        if rng.random() < 0.4:
            s = CATALOG[popular_service(rng)][0]
            if s != services[0]:
                services.append(s)
        asks.append([pin[0], round(lat, 6), round(lon, 6), services, rng.randrange(days), rng.randrange(7, 19)])

    members = []
    for i in range(1, n_members + 1):
        pin = pins[rng.randrange(len(pins))][0]
        members.append(f"rm{i},POLICY_ID,self,{rng.randint(1960, 2000)}-{rng.randint(1, 12):02d}-"
                       f"{rng.randint(1, 28):02d},{rng.choice('FM')},{pin},R{i},98{rng.randrange(10**8):08d},"
                       f"2024-01-01,rm{i}")
    return pins, providers, asks, members


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0x0D157A7C)
    ap.add_argument("--scale-div", type=int, default=1, help="divide pincodes and providers by this")
    ap.add_argument("--cap-scale", type=int, default=1, help="multiply every daily_capacity by this")
    ap.add_argument("--asks", type=int, default=100000)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    a = ap.parse_args()
    t0 = time.time()
    pins, providers, asks, members = build(a.seed, a.scale_div, a.cap_scale, a.asks, a.members, a.days)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "catalog.json"), "w") as f:
        json.dump([{"code": code, "name": CATALOG_NAMES[code], "category": CATEGORY[code], "report_tat": "24h"}
                   for code, _ in CATALOG], f)
    with open(os.path.join(a.out, "providers.jsonl"), "w") as f:
        for pid, body in providers:
            f.write(json.dumps({"id": pid, "body": body}, separators=(",", ":")) + "\n")
    with open(os.path.join(a.out, "asks.jsonl"), "w") as f:
        for ask in asks:
            f.write(json.dumps(ask, separators=(",", ":")) + "\n")
    with open(os.path.join(a.out, "members.csv"), "w") as f:
        f.write("member_id,policy_id,relationship,dob,gender,pincode,name,phone,enrolled_on,family_id\n")
        f.write("\n".join(members) + "\n")

    by_pin = collections.Counter(pc for _, b in providers for pc in b["serviceable_pincodes"])
    probe = by_pin.most_common(1)[0] if by_pin else ("", 0)
    tiers = collections.Counter(b["network_tier"] for _, b in providers)
    kinds = collections.Counter(b["kind"] for _, b in providers)
    caps = [b["daily_capacity"] for _, b in providers]
    summary = {
        "seed": a.seed, "scale_div": a.scale_div, "cap_scale": a.cap_scale, "days": a.days,
        "pincodes": len(pins), "providers": len(providers),
        "tiers": dict(tiers), "kinds": dict(kinds),
        "inactive": sum(1 for _, b in providers if not b["active"]),
        "with_open_hours": sum(1 for _, b in providers if "open_hours" in b),
        "gold_silver_active": sum(1 for _, b in providers if b["active"] and b["network_tier"] != "bronze"),
        "serviceable_pincodes_mean": round(sum(len(b["serviceable_pincodes"]) for _, b in providers) / max(1, len(providers)), 2),
        "services_mean": round(sum(len(b["services"]) for _, b in providers) / max(1, len(providers)), 2),
        "radius_km_mean": round(sum(b["radius_km"] for _, b in providers) / max(1, len(providers)), 2),
        "daily_capacity_min_max_sum": [min(caps), max(caps), sum(caps)] if caps else [],
        "pincodes_listed_by_some_provider": len(by_pin),
        "asks": len(asks), "asks_two_services": sum(1 for x in asks if len(x[3]) == 2),
        "members": len(members),
        "probe_pincode": probe[0], "probe_pincode_providers": probe[1],
        "generated_s": round(time.time() - t0, 2),
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
