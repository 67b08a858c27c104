#!/usr/bin/env python3
"""Closed-loop HTTP/1.1 load client of benches/routing_http (stdlib only: asyncio streams,
one keep-alive connection per worker, no HTTP library).

Why not the shared loadgen (../../../shared/bench/loadgen): its request templates vary only by
{id}/{seq}/{run}/{now_ms}/{env:..} and values captured from earlier steps of the same booking,
so every booking of a run would have the same pincode, location, services and slot; and it
counts any non-expected status as an error without its latency or its body (no 201/422
split, no reasons). This bench needs a different request per booking and a status breakdown.

usage:
  rtload.py put     --base URL --token T --file providers.jsonl --path '/v1/admin/providers/{id}' [--c 32]
  rtload.py ceiling --base URL [--path /readyz] [--c 64] [--secs 5]
  rtload.py preflight --base URL --key PARTNER_KEY --net NET_DIR [--day0 2030-01-01] [--tries 20]
  rtload.py create  --base URL --key PARTNER_KEY --net NET_DIR [--c 16] [--warm 3] [--secs 20]
                    [--members 1000] [--offset 0] [--run RUN] [--day0 2030-01-01] [--sample 20]
                    [--out results.jsonl] [--label TEXT]

Every subcommand prints one JSON line on stdout (also appended to --out if given) and a
human-readable summary on stderr.

create: worker k takes the next sequence number s, sends POST /v1/bookings with
Idempotency-Key and partner_ref `rt-<run>-<s>`, member `rm<(s mod members)+1>` and ask
number (offset + s) mod len(asks) of NET_DIR/asks.jsonl (pincode, lat/lon, services, slot on
day `day` after --day0 (India days) from `hour`:00 to +1 h India time). The first --warm
seconds are not counted; then requests that complete within the next --secs seconds are
counted: rate, latency (send to last byte of the response) p50/p90/p99/max, per status, 422
reason codes, routed share (201 with a provider_id), bookings per provider-day against that
provider's daily_capacity (from NET_DIR/providers.jsonl), and every --sample-th 201 parsed in
full (candidates and exclusions kept in the decision, response size).
"""
import argparse
import asyncio
import collections
import datetime
import itertools
import json
import math
import os
import resource
import sys
import time
from urllib.parse import urlsplit


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = max(1, min(len(sorted_vals), math.ceil(len(sorted_vals) * p)))  # nearest rank
    return sorted_vals[i - 1]


def lat_summary(ns):
    s = sorted(ns)
    ms = lambda v: None if v is None else round(v / 1e6, 3)
    return {
        "n": len(s),
        "p50_ms": ms(pct(s, 0.50)), "p90_ms": ms(pct(s, 0.90)), "p99_ms": ms(pct(s, 0.99)),
        "max_ms": ms(s[-1] if s else None),
        "mean_ms": round(sum(s) / len(s) / 1e6, 3) if s else None,
    }


class Conn:
    """One HTTP/1.1 keep-alive connection."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None

    async def send(self, raw):
        """raw: the whole request. Returns (status, body bytes)."""
        if self.w is None:
            await self.open()
        try:
            self.w.write(raw)
            head = await self.r.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            h = head.lower()
            i = h.find(b"\r\ncontent-length:")
            if i >= 0:
                n = int(h[i + 17:h.index(b"\r\n", i + 2)])
                body = await self.r.readexactly(n) if n else b""
            elif b"transfer-encoding: chunked" in h:
                parts = []
                while True:
                    line = await self.r.readuntil(b"\r\n")
                    n = int(line.split(b";")[0], 16)
                    if n == 0:
                        await self.r.readuntil(b"\r\n")
                        break
                    parts.append(await self.r.readexactly(n))
                    await self.r.readexactly(2)
                body = b"".join(parts)
            else:
                body = b""
            if b"\r\nconnection: close" in h:
                self.close()
            return status, body
        except Exception:
            self.close()
            raise


def request_bytes(method, path, authority, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_base(url):
    u = urlsplit(url)
    return u.hostname, u.port or 80, u.netloc


def emit(summary, out):
    line = json.dumps(summary, separators=(",", ":"))
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


# ---------------------------------------------------------------- put


async def cmd_put(a):
    host, port, auth = parse_base(a.base)
    items = [json.loads(l) for l in open(a.file) if l.strip()]
    it = iter(range(len(items)))
    statuses = collections.Counter()
    lat, errors = [], []

    async def worker():
        conn = Conn(host, port)
        for i in it:
            item = items[i]
            body = json.dumps(item["body"], separators=(",", ":")).encode()
            raw = request_bytes("PUT", a.path.replace("{id}", item["id"]), auth,
                                [("Authorization", f"Bearer {a.token}"), ("Content-Type", "application/json")], body)
            t0 = time.perf_counter_ns()
            for attempt in range(3):
                try:
                    st, rb = await conn.send(raw)
                    break
                except (OSError, asyncio.IncompleteReadError) as e:
                    if attempt == 2:
                        st, rb = -1, str(e).encode()
            lat.append(time.perf_counter_ns() - t0)
            statuses[st] += 1
            if not 200 <= st < 300 and len(errors) < 5:
                errors.append(f"{item['id']}: HTTP {st}: {rb[:300].decode(errors='replace')}")
        conn.close()

    c0, t0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(a.c)))
    secs = time.perf_counter() - t0
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    s = {"what": "put", "path": a.path, "n": len(items), "ok": ok, "c": a.c, "secs": round(secs, 3),
         "per_s": round(len(items) / secs, 1), "statuses": {str(k): v for k, v in sorted(statuses.items())},
         "latency": lat_summary(lat), "client_cpu_s": round(cpu_s() - c0, 2), "error_samples": errors}
    print(f"PUT {a.path}: {len(items)} in {secs:.2f} s = {len(items) / secs:,.0f}/s at c={a.c}; statuses "
          f"{dict(statuses)}; p50 {s['latency']['p50_ms']} ms p99 {s['latency']['p99_ms']} ms", file=sys.stderr)
    for e in errors:
        print("  error sample: " + e, file=sys.stderr)
    emit(s, a.out)
    return 0 if ok == len(items) else 1


# ---------------------------------------------------------------- ceiling


async def cmd_ceiling(a):
    host, port, auth = parse_base(a.base)
    raw = request_bytes("GET", a.path, auth, [])
    t_end = time.perf_counter_ns() + int(a.secs * 1e9)
    lat, statuses = [], collections.Counter()

    async def worker():
        conn = Conn(host, port)
        while time.perf_counter_ns() < t_end:
            t0 = time.perf_counter_ns()
            st, _ = await conn.send(raw)
            lat.append(time.perf_counter_ns() - t0)
            statuses[st] += 1
        conn.close()

    c0, t0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(a.c)))
    secs = time.perf_counter() - t0
    cpu = cpu_s() - c0
    s = {"what": "ceiling", "path": a.path, "c": a.c, "secs": round(secs, 3), "requests": len(lat),
         "per_s": round(len(lat) / secs, 1), "statuses": {str(k): v for k, v in statuses.items()},
         "latency": lat_summary(lat), "client_cpu_s": round(cpu, 2),
         "client_cpu_pct": round(100 * cpu / secs, 1),
         "client_cpu_us_per_req": round(1e6 * cpu / max(1, len(lat)), 1)}
    print(f"client ceiling: GET {a.path} at c={a.c}: {s['per_s']:,.0f} req/s, p50 {s['latency']['p50_ms']} ms "
          f"p99 {s['latency']['p99_ms']} ms; client CPU {s['client_cpu_pct']} % of one core "
          f"({s['client_cpu_us_per_req']} us/request)", file=sys.stderr)
    emit(s, a.out)


# ---------------------------------------------------------------- create


def slot_strings(day0, days, hours=range(0, 24)):
    d0 = datetime.datetime.fromisoformat(day0).replace(tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    out = {}
    for d in range(days):
        for h in hours:
            s = (d0 + datetime.timedelta(days=d, hours=h)).astimezone(datetime.timezone.utc)
            e = s + datetime.timedelta(hours=1)
            out[(d, h)] = (s.strftime("%Y-%m-%dT%H:%M:%SZ"), e.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


def load_asks(net, day0):
    asks = [json.loads(l) for l in open(os.path.join(net, "asks.jsonl")) if l.strip()]
    days = max(x[4] for x in asks) + 1
    slots = slot_strings(day0, days)
    frags = []
    for pin, lat, lon, services, day, hour in asks:
        st, en = slots[(day, hour)]
        frag = (f',"services":{json.dumps(services, separators=(",", ":"))},"mode":"home_collection",'
                f'"slot":{{"start":"{st}","end":"{en}"}},'
                f'"address":{{"pincode":"{pin}","lat":{lat},"lon":{lon}}}')
        frags.append((frag.encode(), day))
    return frags


async def cmd_create(a):
    host, port, auth = parse_base(a.base)
    frags = load_asks(a.net, a.day0)
    capacity = {}
    for l in open(os.path.join(a.net, "providers.jsonl")):
        if l.strip():
            p = json.loads(l)
            capacity[p["id"]] = p["body"]["daily_capacity"]
    run = a.run or str(int(time.time() * 1000))
    head_fixed = (f"POST /v1/bookings HTTP/1.1\r\nHost: {auth}\r\nAuthorization: Bearer {a.key}\r\n"
                  f"Content-Type: application/json\r\n").encode()
    counter = itertools.count()
    now = time.perf_counter_ns
    t_start = now()
    t_warm = t_start + int(a.warm * 1e9)
    t_end = t_warm + int(a.secs * 1e9)

    lat_all, lat_201 = [], []
    statuses = collections.Counter()
    reasons = collections.Counter()
    per_pday = collections.Counter()
    states = collections.Counter()
    samples = {"n": 0, "candidates": 0, "excluded": 0, "bytes": 0, "excluded_reasons": collections.Counter()}
    err_samples, conn_errors = [], [0]
    warm = collections.Counter()
    other_bodies = []

    async def worker():
        conn = Conn(host, port)
        while True:
            if now() >= t_end:
                break
            s = next(counter)
            frag, day = frags[(a.offset + s) % len(frags)]
            ref = f"rt-{run}-{s}"
            body = b'{"member_id":"rm%d"' % (s % a.members + 1) + frag + b',"partner_ref":"' + ref.encode() + b'"}'
            raw = (head_fixed + b"Idempotency-Key: " + ref.encode() + b"\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
            t0 = now()
            try:
                st, rb = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                conn_errors[0] += 1
                if len(err_samples) < 5:
                    err_samples.append(f"connection: {e!r}")
                await asyncio.sleep(0.05)
                continue
            t1 = now()
            if t1 < t_warm:
                warm[st] += 1
                continue
            if t1 >= t_end:
                continue
            lat_all.append(t1 - t0)
            statuses[st] += 1
            if st == 201:
                lat_201.append(t1 - t0)
                i = rb.find(b'"provider_id":')
                pid = None
                if i >= 0 and rb[i + 14:i + 15] == b'"':
                    pid = rb[i + 15:rb.index(b'"', i + 15)].decode()
                else:
                    pid = json.loads(rb).get("provider_id")
                if pid:
                    per_pday[(pid, day)] += 1
                if samples["n"] < 100000 and len(lat_201) % a.sample == 1:
                    v = json.loads(rb)
                    r = v.get("routing") or {}
                    samples["n"] += 1
                    samples["candidates"] += len(r.get("candidates") or [])
                    samples["excluded"] += len(r.get("excluded") or [])
                    samples["bytes"] += len(rb)
                    states[v.get("state")] += 1
                    for e in r.get("excluded") or []:
                        samples["excluded_reasons"][e.get("reason")] += 1
            elif st == 422:
                try:
                    v = json.loads(rb)
                    codes = ",".join(sorted(x.get("code", "?") for x in v.get("reasons") or [])) or v.get("code", "?")
                except ValueError:
                    codes = "unparsable"
                reasons[codes] += 1
            elif len(other_bodies) < 5:
                other_bodies.append(f"HTTP {st}: {rb[:300].decode(errors='replace')}")
        conn.close()

    c0 = cpu_s()
    await asyncio.gather(*(worker() for _ in range(a.c)))
    cpu = cpu_s() - c0
    window = (min(now(), t_end) - t_warm) / 1e9
    n = len(lat_all)
    n201 = statuses.get(201, 0)
    n422 = statuses.get(422, 0)
    unrouted = sum(v for k, v in reasons.items() if "network_not_covered" in k)
    over = [(p, d, k, capacity.get(p)) for (p, d), k in per_pday.items() if capacity.get(p) is not None and k >= capacity[p]]
    top = per_pday.most_common(1)
    sn = samples["n"] or 1
    s = {
        "what": "create", "label": a.label, "run": run, "c": a.c, "warm_s": a.warm, "secs": round(window, 3),
        "members": a.members, "offset": a.offset, "day0": a.day0,
        "requests": n, "requests_per_s": round(n / window, 1),
        "creates_201": n201, "creates_per_s": round(n201 / window, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "routed_share": round(n201 / n, 4) if n else None,
        "ineligible_422": n422, "no_provider_422": unrouted,
        "reasons_422": dict(reasons.most_common()),
        "latency_all": lat_summary(lat_all), "latency_201": lat_summary(lat_201),
        "warmup": {str(k): v for k, v in warm.items()},
        "connection_errors": conn_errors[0], "error_samples": err_samples + other_bodies,
        "provider_days_used": len(per_pday),
        "max_bookings_per_provider_day": ({"provider": top[0][0][0], "day": top[0][0][1], "bookings": top[0][1],
                                           "capacity": capacity.get(top[0][0][0])} if top else None),
        "provider_days_at_capacity": len(over),
        "sampled_201": {"n": samples["n"], "candidates_mean": round(samples["candidates"] / sn, 1),
                        "excluded_mean": round(samples["excluded"] / sn, 1),
                        "response_kb_mean": round(samples["bytes"] / sn / 1024, 1),
                        "states": dict(states),
                        "excluded_reasons_per_booking": {k: round(v / sn, 1) for k, v in samples["excluded_reasons"].most_common()}},
        "client_cpu_s": round(cpu, 2), "client_cpu_pct": round(100 * cpu / (window + a.warm), 1),
    }
    L = s["latency_all"]
    print(f"[{a.label}] c={a.c}: {n} requests in {window:.1f} s (after {a.warm} s warm-up): "
          f"creates {n201} = {s['creates_per_s']:,.1f}/s; statuses {s['statuses']}; routed {100 * (s['routed_share'] or 0):.1f} %; "
          f"422 reasons {s['reasons_422']}", file=sys.stderr)
    print(f"[{a.label}] c={a.c}: latency (all) p50 {L['p50_ms']} p90 {L['p90_ms']} p99 {L['p99_ms']} max {L['max_ms']} ms; "
          f"client CPU {s['client_cpu_pct']} % of one core; max per provider-day {s['max_bookings_per_provider_day']}; "
          f"provider-days at capacity {len(over)}", file=sys.stderr)
    for e in s["error_samples"]:
        print("  error sample: " + e, file=sys.stderr)
    emit(s, a.out)


async def cmd_preflight(a):
    """One create at a time with asks 0, 1, ... until one answers 201 (at most --tries)."""
    host, port, auth = parse_base(a.base)
    frags = load_asks(a.net, a.day0)
    conn = Conn(host, port)
    for i in range(a.tries):
        frag, _ = frags[i]
        ref = f"preflight-{int(time.time() * 1000)}-{i}"
        body = b'{"member_id":"rm1"' + frag + b',"partner_ref":"' + ref.encode() + b'"}'
        raw = request_bytes("POST", "/v1/bookings", auth, [("Authorization", f"Bearer {a.key}"),
                            ("Content-Type", "application/json"), ("Idempotency-Key", ref)], body)
        t0 = time.perf_counter()
        st, rb = await conn.send(raw)
        ms = (time.perf_counter() - t0) * 1000
        if st == 201:
            v = json.loads(rb)
            r = v.get("routing") or {}
            print(f"preflight: ask {i} -> 201 in {ms:.1f} ms: booking {v.get('id')} state {v.get('state')} "
                  f"provider {v.get('provider_id')}, gross {v.get('amounts', {}).get('gross_paise')} paise, "
                  f"{len(r.get('candidates') or [])} candidates / {len(r.get('excluded') or [])} exclusions kept, "
                  f"response {len(rb)} bytes; request {body.decode()}", file=sys.stderr)
            conn.close()
            return 0
        print(f"preflight: ask {i} -> HTTP {st} in {ms:.1f} ms: {rb[:400].decode(errors='replace')}", file=sys.stderr)
        if st != 422:
            break
    conn.close()
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("put")
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--c", type=int, default=32)
    p.add_argument("--out")
    p = sub.add_parser("ceiling")
    p.add_argument("--base", required=True)
    p.add_argument("--path", default="/readyz")
    p.add_argument("--c", type=int, default=64)
    p.add_argument("--secs", type=float, default=5)
    p.add_argument("--out")
    p = sub.add_parser("create")
    p.add_argument("--base", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--net", required=True)
    p.add_argument("--c", type=int, default=16)
    p.add_argument("--warm", type=float, default=3)
    p.add_argument("--secs", type=float, default=20)
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--run")
    p.add_argument("--day0", default="2030-01-01")
    p.add_argument("--sample", type=int, default=20)
    p.add_argument("--label", default="routing_http")
    p.add_argument("--out")
    p = sub.add_parser("preflight")
    p.add_argument("--base", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--net", required=True)
    p.add_argument("--day0", default="2030-01-01")
    p.add_argument("--tries", type=int, default=20)
    a = ap.parse_args()
    rc = asyncio.run({"put": cmd_put, "ceiling": cmd_ceiling, "create": cmd_create,
                      "preflight": cmd_preflight}[a.cmd](a))
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
