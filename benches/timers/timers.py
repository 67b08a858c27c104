#!/usr/bin/env python3
"""Helpers for the SLA-timer benches (lateness.sh, drain.sh). Standard library only.

  timers.py scan BASE KIND [--prefix P] [--expect N] [--out FILE]
      Pages through GET /v1/bookings?limit=200 (partner key DX_PARTNER_KEY), keeps the bookings
      whose partner_ref starts with P, and for the SLA entry of KIND computes
      lateness = breached_at - due_at. Checks: one entry of KIND per booking, every one breached,
      exactly one sla_breach exception per booking, no id listed twice.
      Prints one JSON line (counts, lateness p50/p90/p99/max/min in ms, problems).
      --timelines K: also reads K random bookings' /timeline and counts each audit action per
      booking (a timer that fired twice would show as sla.breached: {"2": ...}).

  timers.py watch BASE SERIES --target N [--interval 0.2] [--timeout S] [--t0 EPOCH] [--log FILE]
      Polls GET /metrics every interval until the counter SERIES (Prometheus text, e.g.
      'dxstack_sla_outcomes_total{kind="acceptance",state="breached"}'; label order does not
      matter) reaches N. Connection errors (server not up yet) are retried. Prints one JSON line:
      the first wall-clock time (relative to --t0) at which SERIES >= N, and the samples seen.

  timers.py probe BASE --stop FILE --out FILE [--interval 0.05] [--ids FILE]
      Closed loop on one keep-alive connection until FILE exists: GET /v1/bookings/{id} of a
      random id from --ids (one per line), then POST /v1/bookings (a new booking, env DX_* like
      the loadgen steps), then sleep --interval. Writes one JSON line to --out with p50/p99/max
      per operation and any non-2xx answers.

  timers.py ids BASE N --prefix P
      Prints up to N booking ids (partner_ref starting with P) from the first list pages.
"""
import argparse
import http.client
import json
import os
import random
import re
import sys
import time
from datetime import datetime
from urllib.parse import quote, urlparse


def conn_for(base, timeout=120):
    u = urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def ts_ms(s):
    """RFC 3339 UTC ('2026-12-04T10:00:00Z' or with .mmm) -> epoch ms."""
    return round(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def quantiles(xs):
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return {"n": len(xs), "min": xs[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": xs[-1]}


def partner_headers():
    return {"authorization": "Bearer " + os.environ["DX_PARTNER_KEY"]}


def list_all(base, prefix):
    """Yields every booking (list view) whose partner_ref starts with prefix."""
    c = conn_for(base)
    cursor = None
    while True:
        path = "/v1/bookings?limit=200" + (f"&cursor={quote(cursor)}" if cursor else "")
        c.request("GET", path, headers=partner_headers())
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET {path} -> {r.status}: {body[:300]!r}")
        j = json.loads(body)
        for it in j["items"]:
            if (it.get("partner_ref") or "").startswith(prefix):
                yield it
        cursor = j.get("next_cursor")
        if not cursor:
            return


def cmd_scan(a):
    t0 = time.time()
    seen = set()
    dup_ids = 0
    states = {}
    booking_states = {}
    lat = []
    fired_rel_due = []  # breached_at - due_at, per booking (same as lat; kept for clarity)
    due_set = set()
    breached_abs = []
    problems = []
    exc_hist = {}
    for it in list_all(a.base, a.prefix):
        bid = it["id"]
        if bid in seen:
            dup_ids += 1
            continue
        seen.add(bid)
        booking_states[it["state"]] = booking_states.get(it["state"], 0) + 1
        entries = [e for e in it.get("sla", []) if e["kind"] == a.kind]
        if len(entries) != 1:
            problems.append(f"{bid}: {len(entries)} {a.kind} SLA entries")
        for e in entries:
            states[e["state"]] = states.get(e["state"], 0) + 1
            due_set.add(e["due_at"])
            if e["state"] == "breached":
                if not e.get("breached_at"):
                    problems.append(f"{bid}: breached without breached_at")
                    continue
                b = ts_ms(e["breached_at"])
                breached_abs.append(b)
                lat.append(b - ts_ms(e["due_at"]))
        nb = sum(1 for x in it.get("exceptions", []) if x.get("type", x.get("case_type")) == "sla_breach")
        exc_hist[nb] = exc_hist.get(nb, 0) + 1
        if nb != 1 and len(problems) < 1000:
            problems.append(f"{bid}: {nb} sla_breach exceptions ({it.get('exceptions')})")
    q = quantiles(lat)
    out = {
        "kind": a.kind, "bookings": len(seen), "expected": a.expect, "duplicate_ids_listed": dup_ids,
        "booking_states": booking_states, "sla_states": states, "distinct_due_at": len(due_set),
        "sla_breach_exceptions_per_booking": {str(k): v for k, v in sorted(exc_hist.items())},
        "lateness_ms": q,
        "negative_lateness": sum(1 for x in lat if x < 0),
        "first_fired_rel_due_ms": q.get("min"), "last_fired_rel_due_ms": q.get("max"),
        "fire_span_ms": (max(breached_abs) - min(breached_abs)) if breached_abs else None,
        "problems": len(problems), "problem_samples": problems[:5],
        "scan_s": round(time.time() - t0, 2),
    }
    if a.timelines:
        out["timelines"] = sample_timelines(a.base, sorted(seen), a.timelines)
    if a.expect is not None and len(seen) != a.expect:
        out["problem_count_mismatch"] = f"listed {len(seen)} bookings, expected {a.expect}"
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"lateness_ms_all": lat}, f)
    print(json.dumps(out))


def sample_timelines(base, ids, k):
    """Audit actions of K random bookings' timelines: how many carry each action how often."""
    c = conn_for(base)
    per_action = {}  # action -> {occurrences per booking: bookings}
    for bid in random.sample(ids, min(k, len(ids))):
        c.request("GET", f"/v1/bookings/{quote(bid)}/timeline", headers=partner_headers())
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET timeline {bid} -> {r.status}: {body[:300]!r}")
        counts = {}
        for e in json.loads(body)["items"]:
            counts[e.get("action")] = counts.get(e.get("action"), 0) + 1
        for act, n in counts.items():
            h = per_action.setdefault(act, {})
            h[str(n)] = h.get(str(n), 0) + 1
    return {"sampled": min(k, len(ids)), "actions": per_action}


SERIES_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")


def parse_series(s):
    m = SERIES_RE.match(s + " 0")
    name, labels = m.group(1), m.group(3) or ""
    return name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels))


def metric_values(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES_RE.match(line)
        if not m:
            continue
        key = (m.group(1), frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or "")))
        out[key] = float(m.group(4))
    return out


def cmd_watch(a):
    key = parse_series(a.series)
    t0 = a.t0 or time.time()
    deadline = time.time() + a.timeout
    c = None
    samples = []
    reached = None
    errors = 0
    log = open(a.log, "w") if a.log else None
    while time.time() < deadline:
        tick = time.time()
        try:
            if c is None:
                c = conn_for(a.base, timeout=5)
            c.request("GET", "/metrics")
            r = c.getresponse()
            text = r.read().decode()
            v = metric_values(text).get(key, 0.0)
            now = time.time()
            samples.append((round(now - t0, 3), v))
            if log:
                log.write(f"{now - t0:.3f} {v:.0f}\n")
                log.flush()
            if v >= a.target:
                reached = round(now - t0, 3)
                break
        except (OSError, http.client.HTTPException):
            errors += 1
            c = None
        time.sleep(max(0.0, a.interval - (time.time() - tick)))
    first_nonzero = next((t for t, v in samples if v > 0), None)
    out = {"series": a.series, "target": a.target, "reached_at_s": reached,
           "first_nonzero_at_s": first_nonzero, "first_poll_ok_at_s": samples[0][0] if samples else None,
           "last_value": samples[-1][1] if samples else None, "polls": len(samples), "poll_errors": errors}
    print(json.dumps(out))


def booking_body(ref):
    e = os.environ.get
    return json.dumps({
        "member_id": e("DX_MEMBER", "m-bench"), "services": [e("DX_SERVICE", "CBC")],
        "mode": "home_collection",
        "slot": {"start": e("DX_SLOT_START", "2030-01-01T09:00:00Z"), "end": e("DX_SLOT_END", "2030-01-01T10:00:00Z")},
        "address": {"pincode": e("DX_PINCODE", "560001"), "lat": float(e("DX_LAT", "12.97")), "lon": float(e("DX_LON", "77.59"))},
        "partner_ref": ref,
    })


def cmd_probe(a):
    ids = [l.strip() for l in open(a.ids) if l.strip()] if a.ids else []
    c = conn_for(a.base, timeout=60)
    hdr = partner_headers()
    get_ms, post_ms, errors = [], [], []
    run = int(time.time())
    i = 0

    def call(method, path, body=None, extra=None):
        nonlocal c
        h = dict(hdr)
        if extra:
            h.update(extra)
        t = time.perf_counter()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as ex:
            c = conn_for(a.base, timeout=60)
            errors.append(f"{method} {path}: {ex!r}")
            return None, (time.perf_counter() - t) * 1000
        ms = (time.perf_counter() - t) * 1000
        if r.status // 100 != 2:
            errors.append(f"{method} {path} -> {r.status}: {data[:200]!r}")
        return r.status, ms

    t_start = time.time()
    while not os.path.exists(a.stop):
        tick = time.time()
        if ids:
            st, ms = call("GET", f"/v1/bookings/{quote(random.choice(ids))}")
            if st is not None:
                get_ms.append(ms)
        ref = f"probe-{run}-{i}"
        st, ms = call("POST", "/v1/bookings", booking_body(ref),
                      {"content-type": "application/json", "idempotency-key": ref})
        if st is not None:
            post_ms.append(ms)
        i += 1
        time.sleep(max(0.0, a.interval - (time.time() - tick)))
    r2 = lambda d: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in d.items()}
    out = {"iterations": i, "seconds": round(time.time() - t_start, 2),
           "get_ms": r2(quantiles(get_ms)), "create_ms": r2(quantiles(post_ms)),
           "all_ms": r2(quantiles(get_ms + post_ms)),
           "errors": len(errors), "error_samples": errors[:5]}
    with open(a.out, "w") as f:
        f.write(json.dumps(out) + "\n")


def cmd_ids(a):
    n = 0
    for it in list_all(a.base, a.prefix):
        print(it["id"])
        n += 1
        if n >= a.n:
            break


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scan")
    s.add_argument("base"); s.add_argument("kind")
    s.add_argument("--prefix", default=""); s.add_argument("--expect", type=int)
    s.add_argument("--out"); s.add_argument("--timelines", type=int, default=0)
    s.set_defaults(f=cmd_scan)
    w = sub.add_parser("watch")
    w.add_argument("base"); w.add_argument("series")
    w.add_argument("--target", type=float, required=True)
    w.add_argument("--interval", type=float, default=0.2)
    w.add_argument("--timeout", type=float, default=600)
    w.add_argument("--t0", type=float); w.add_argument("--log")
    w.set_defaults(f=cmd_watch)
    pr = sub.add_parser("probe")
    pr.add_argument("base"); pr.add_argument("--stop", required=True); pr.add_argument("--out", required=True)
    pr.add_argument("--interval", type=float, default=0.05); pr.add_argument("--ids")
    pr.set_defaults(f=cmd_probe)
    i = sub.add_parser("ids")
    i.add_argument("base"); i.add_argument("n", type=int); i.add_argument("--prefix", default="")
    i.set_defaults(f=cmd_ids)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
