#!/usr/bin/env python3
"""benches/webhooks/wh.py: helpers of the webhook benches (sampling, draining, the report).

  wh.py sample BASE RX OUT        every 0.5 s append one TSV line to OUT until SIGTERM:
                                  t  rx_posts  delivered  retrying  dead  attempts  events
                                  outbox_depth  committer_queue  http_5xx
  wh.py drain BASE RX TIMEOUT [N] wait until the server has delivered (or killed) every event it
                                  counted, N endpoints each (delivered + dead >= N * events) and the receiver has
                                  stopped receiving; prints `<seconds> <backlog at start> <ok|timeout>`
  wh.py probe BASE RX KEY N GAP TSV  N lone creates GAP s apart; latency of each one's webhook
  wh.py counters BASE             one line of the counters above (no t, no rx)
  wh.py level ARGS...             the report of one level (see `level()` below), human lines on
                                  stdout and a JSON line appended to --out

BASE = the server's base URL, RX = the receiver's base URL. Counters are the server's /metrics
(`dxstack_webhook_deliveries_total{outcome}`, `dxstack_webhook_attempts_total`,
`dxstack_events_total` summed over types, `dxstack_outbox_depth`,
`dxstack_committer_queue_depth`, `dxstack_http_requests_total{status="5xx"}`).
"""
import json
import math
import signal
import sys
import time
import urllib.request
from collections import Counter, defaultdict


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def parse_metrics(text):
    """{(name, labels_str): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        try:
            k, v = line.rsplit(" ", 1)
            v = float(v)
        except ValueError:
            continue
        if "{" in k:
            name, labels = k.split("{", 1)
            labels = labels.rstrip("}")
        else:
            name, labels = k, ""
        out[(name, labels)] = v
    return out


def counters(m):
    def s(name, pred=lambda l: True):
        return sum(v for (n, l), v in m.items() if n == name and pred(l))
    return {
        "delivered": s("dxstack_webhook_deliveries_total", lambda l: 'outcome="delivered"' in l),
        "retrying": s("dxstack_webhook_deliveries_total", lambda l: 'outcome="retrying"' in l),
        "dead": s("dxstack_webhook_deliveries_total", lambda l: 'outcome="dead"' in l),
        "attempts": s("dxstack_webhook_attempts_total"),
        "events": s("dxstack_events_total"),
        "outbox_depth": s("dxstack_outbox_depth"),
        "queue": s("dxstack_committer_queue_depth"),
        "http_5xx": s("dxstack_http_requests_total", lambda l: '"5' in l),
    }


COLS = ["delivered", "retrying", "dead", "attempts", "events", "outbox_depth", "queue", "http_5xx"]


def rx_posts(rx):
    return json.loads(get(rx + "/stats"))["posts"]


def cmd_sample(base, rx, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    with open(out, "a") as f:
        while not stop:
            t = time.time()
            try:
                c = counters(parse_metrics(get(base + "/metrics")))
                p = rx_posts(rx)
                f.write(f"{t:.3f}\t{p}\t" + "\t".join(f"{c[k]:.0f}" for k in COLS) + "\n")
                f.flush()
            except Exception as e:  # keep sampling; note the failure
                f.write(f"{t:.3f}\t# {e}\n")
                f.flush()
            time.sleep(max(0.0, 0.5 - (time.time() - t)))


def cmd_drain(base, rx, timeout, neps=1):
    t0 = time.time()
    c = counters(parse_metrics(get(base + "/metrics")))
    backlog0 = c["events"] * neps - c["delivered"] - c["dead"]
    last_posts, last_change = rx_posts(rx), time.time()
    while True:
        c = counters(parse_metrics(get(base + "/metrics")))
        p = rx_posts(rx)
        now = time.time()
        if p != last_posts:
            last_posts, last_change = p, now
        if c["delivered"] + c["dead"] >= c["events"] * neps and now - last_change >= 0.5:
            print(f"{last_change - t0:.2f} {backlog0:.0f} ok")
            return
        if now - t0 > timeout:
            print(f"{now - t0:.2f} {backlog0:.0f} timeout")
            return
        time.sleep(0.05)


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


def hist_delta(m0, m1, name):
    """[(le, count)] of a Prometheus histogram's delta, cumulative, le ascending."""
    b = []
    for (n, l), v in m1.items():
        if n == name + "_bucket":
            le = l.split('le="')[1].split('"')[0]
            le = math.inf if le == "+Inf" else float(le)
            b.append((le, v - m0.get((n, l), 0.0)))
    return sorted(b)


def hist_q(buckets, q):
    """(interpolated value, bucket low, bucket high) of quantile q."""
    if not buckets or buckets[-1][1] <= 0:
        return (float("nan"),) * 3
    total = buckets[-1][1]
    want = q * total
    lo, prev = 0.0, 0.0
    for le, cum in buckets:
        if cum >= want:
            if le == math.inf:
                return (lo, lo, le)
            frac = (want - prev) / (cum - prev) if cum > prev else 1.0
            return (lo + frac * (le - lo), lo, le)
        lo, prev = le, cum
    return (float("nan"),) * 3


def load_rx(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 8:
            continue
        rows.append({"t": float(f[0]), "wid": f[1], "eid": f[2],
                     "occ": None if f[3] == "-" else float(f[3]), "type": f[4], "bid": f[5], "ref": f[6],
                     "path": f[7]})
    return rows


ORDER = {"booking.created": 0, "booking.confirmed": 1, "booking.in_progress": 2, "booking.completed": 3}


def level(a):
    lg = json.loads(open(a["loadgen"]).read())
    m0, m1, m2 = (parse_metrics(open(a[k]).read()) for k in ("m_start", "m_stop", "m_drained"))
    c0, c1, c2 = counters(m0), counters(m1), counters(m2)
    t_start, t_stop = float(a["t_start"]), float(a["t_stop"])
    load_s = t_stop - t_start
    prefix = a.get("ref_prefix") or f"dx-{lg['run_id']}-"  # loadgen {id} = <id_prefix>-<run>-<seq>
    rows = [r for r in load_rx(a["rx_tsv"]) if r["ref"].startswith(prefix)]
    out = {"name": a.get("name", ""), "c": lg["c"], "secs": round(load_s, 2), "loadavg_start": a["load_start"], "loadavg_end": a["load_end"]}

    # --- load side
    out["bookings"] = lg["bookings_done"]
    out["transitions"] = lg["steps_ok"]
    out["transitions_per_s"] = round(lg["steps_per_s"], 1)
    out["loadgen_errors"] = lg["errors"]
    out["loadgen_p50_ms"], out["loadgen_p99_ms"] = lg["all_p50_ms"], lg["all_p99_ms"]
    events = c2["events"] - c0["events"]
    out["events_committed"] = int(events)

    # --- deliveries received
    posts = len(rows)
    neps = int(a.get("endpoints", 1))
    eids = Counter((r["eid"], r["path"]) for r in rows)  # one delivery per event per endpoint (path)
    wids = Counter(r["wid"] for r in rows)
    in_load = [r for r in rows if r["t"] <= t_stop]
    out["posts_received"] = posts
    out["distinct_events_received"] = len(eids)
    out["duplicate_posts"] = posts - len(eids)
    out["events_with_2plus_posts"] = sum(1 for n in eids.values() if n > 1)
    out["distinct_webhook_ids"] = len(wids)
    out["endpoints"] = neps
    out["deliveries_expected"] = int(events) * neps
    out["missing_events"] = int(events) * neps - len(eids)
    out["received_per_s_during_load"] = round(len(in_load) / load_s, 1) if load_s > 0 else None
    last = max((r["t"] for r in rows), default=t_stop)
    first = min((r["t"] for r in rows), default=t_start)
    out["received_per_s_overall"] = round(posts / (last - t_start), 1) if last > t_start else None
    out["last_arrival_after_stop_s"] = round(last - t_stop, 2)
    out["backlog_at_stop"] = int(c1["events"] * neps - c1["delivered"] - c1["dead"])
    out["outbox_depth_gauge_at_stop"] = int(c1["outbox_depth"])
    out["drain_s"] = float(a["drain_s"])
    out["drain_status"] = a["drain_status"]

    # --- latency: arrival at the receiver - occurred_at in the body (ms resolution)
    lat = sorted(1000 * (r["t"] - r["occ"]) for r in rows if r["occ"] is not None)
    lat_load = sorted(1000 * (r["t"] - r["occ"]) for r in in_load if r["occ"] is not None)
    for k, v in (("all", lat), ("load", lat_load)):
        out[f"rx_lat_{k}_ms"] = {q: round(pct(v, p), 1) for q, p in (("p50", .5), ("p90", .9), ("p99", .99), ("max", 1.0))}
    by_type = defaultdict(list)
    for r in rows:
        if r["occ"] is not None:
            by_type[r["type"]].append(1000 * (r["t"] - r["occ"]))
    out["rx_lat_by_type_ms"] = {t: [round(pct(sorted(v), .5), 1), round(pct(sorted(v), .99), 1)] for t, v in sorted(by_type.items(), key=lambda kv: ORDER.get(kv[0], 9))}
    out["negative_latency"] = sum(1 for x in lat if x < -1.0)

    # --- server histogram (commit of the event -> commit of the successful attempt)
    hb = hist_delta(m0, m2, "dxstack_webhook_commit_to_delivery_seconds")
    hq = {q: hist_q(hb, p) for q, p in (("p50", .5), ("p99", .99))}
    out["server_hist_ms"] = {q: [round(1000 * v[0], 1), round(1000 * v[1], 1), round(1000 * v[2], 1) if v[2] != math.inf else "inf"] for q, v in hq.items()}
    out["server_hist_count"] = int(hb[-1][1]) if hb else 0

    # --- server counters over the level
    for k in ("delivered", "retrying", "dead", "attempts", "http_5xx"):
        out[f"server_{k}"] = int(c2[k] - c0[k])

    # --- the committer while loading (start -> stop) and while draining (stop -> drained)
    for tag, ma, mb, secs in (("load", m0, m1, load_s), ("drain", m1, m2, None)):
        D = lambda n: mb.get((n, ""), 0.0) - ma.get((n, ""), 0.0)
        n = D("dxstack_batch_commands_count")
        cmds = lambda kind: sum(v - ma.get((k, l), 0.0) for (k, l), v in mb.items()
                                if k == "dxstack_commands_total" and f'kind="{kind}"' in l)
        cm = lambda n: sum(v - ma.get((k, l), 0.0) for (k, l), v in mb.items() if k == n)
        if n:
            out[f"committer_{tag}"] = {
                "commits": int(n), "commands_per_commit": round(D("dxstack_batch_commands_sum") / n, 1),
                "commit_ms": round(1000 * D("dxstack_commit_seconds_sum") / n, 2),
                "busy_s": round(D("dxstack_commit_seconds_sum"), 1),
                # one command per attempt (record_attempt) or one per batch of attempts (record_attempts)
                "record_attempt_cmds": int(cmds("record_attempt") + cmds("record_attempts")),
                "attempts": int(cm("dxstack_webhook_attempts_total")),
                "all_cmds": int(D("dxstack_batch_commands_sum")),
            }
    # --- order per booking
    per_b = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["t"]):
        per_b[(r["bid"], r["path"])].append(r["type"])
    out_of_order = 0
    incomplete = 0
    for b, types in per_b.items():
        firsts = []
        for t in types:
            if t not in firsts:
                firsts.append(t)
        if [ORDER.get(t, 9) for t in firsts] != sorted(ORDER.get(t, 9) for t in firsts):
            out_of_order += 1
        seen = {ORDER.get(t, 9) for t in firsts}
        if seen and seen != set(range(max(seen) + 1)):
            incomplete += 1  # a later event arrived but an earlier one never did
    out["bookings_seen"] = len(per_b)
    out["bookings_out_of_order"] = out_of_order
    out["bookings_with_gap"] = incomplete
    out.update({k: a[k] for k in ("server_cpu_pct", "rx_cpu_pct") if k in a})
    # backlog (events committed - delivered - dead) and delivery rate, every 2 s, from the sampler
    tl = []
    if a.get("samples"):
        smp = []
        for line in open(a["samples"]):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 10 and not f[1].startswith("#"):
                smp.append([float(x) for x in f])
        last_t = None
        for x in smp:
            t, p, d, _r, dead, _at, ev = x[:7]
            if last_t is None or t - last_t >= 1.999:
                if last_t is not None:
                    rate = (d - last_d) / (t - last_t)
                    tl.append([round(t - t_start, 1), int(ev * neps - d - dead), round(rate)])
                last_t, last_d = t, d
    out["timeline"] = tl
    return out


def fmt(o):
    L = []
    L.append(f"{o.get('name', '')}c={o['c']}: load {o['secs']} s: {o['bookings']} bookings, {o['transitions']} transitions "
             f"({o['transitions_per_s']}/s), loadgen p50/p99 {o['loadgen_p50_ms']:.2f}/{o['loadgen_p99_ms']:.2f} ms, "
             f"errors {o['loadgen_errors']}; loadavg {o['loadavg_start']} -> {o['loadavg_end']}")
    L.append(f"  deliveries received: {o['posts_received']} POSTs; {o['received_per_s_during_load']}/s while loading, "
             f"{o['received_per_s_overall']}/s from start to last arrival")
    dr = o["last_arrival_after_stop_s"]
    L.append(f"  backlog when load stopped: {o['backlog_at_stop']} deliveries not yet made "
             f"(dxstack_outbox_depth gauge {o['outbox_depth_gauge_at_stop']}); last one arrived {dr} s after the stop "
             + (f"(drain {o['backlog_at_stop'] / dr:,.0f}/s); " if dr > 0.05 and o['backlog_at_stop'] > 100 else "; ")
             + f"server counters settled: {o['drain_status']}")
    la, ll = o["rx_lat_all_ms"], o["rx_lat_load_ms"]
    L.append(f"  commit->arrival (receiver clock - occurred_at): p50 {la['p50']} p90 {la['p90']} p99 {la['p99']} max {la['max']} ms "
             f"(arrivals during load only: p50 {ll['p50']} p99 {ll['p99']} ms)")
    L.append("  by type p50/p99 ms: " + ", ".join(f"{t.split('.')[-1]} {v[0]}/{v[1]}" for t, v in o["rx_lat_by_type_ms"].items()))
    h = o["server_hist_ms"]
    L.append(f"  server histogram commit_to_delivery ({o['server_hist_count']} obs): p50 ~{h['p50'][0]} ms (bucket {h['p50'][1]}-{h['p50'][2]}), "
             f"p99 ~{h['p99'][0]} ms (bucket {h['p99'][1]}-{h['p99'][2]})")
    L.append(f"  exactly-once: events committed {o['events_committed']} (transitions ok {o['transitions']}), distinct " + ("event ids" if o.get("endpoints", 1) == 1 else f"(event id, endpoint) pairs for {o['endpoints']} endpoints")
             + f" received {o['distinct_events_received']}, missing {o['missing_events']}, duplicate POSTs {o['duplicate_posts']} "
             f"({o['events_with_2plus_posts']} events); server delivered {o['server_delivered']} retrying {o['server_retrying']} "
             f"dead {o['server_dead']} attempts {o['server_attempts']}; 5xx {o['server_http_5xx']}")
    L.append(f"  order: {o['bookings_seen']} bookings, {o['bookings_out_of_order']} out of order, {o['bookings_with_gap']} with a gap; "
             f"negative latencies {o['negative_latency']}")
    for tag in ("load", "drain"):
        k = o.get(f"committer_{tag}")
        if k:
            L.append(f"  committer ({tag}): {k['all_cmds']} commands ({k['record_attempt_cmds']} recording "
                     f"{k.get('attempts', '?')} webhook attempts) in "
                     f"{k['commits']} group commits, {k['commands_per_commit']} per commit, {k['commit_ms']} ms per commit, "
                     f"busy {k['busy_s']} s" + (f" of {o['secs']} s" if tag == "load" else ""))
    if o.get("timeline"):
        L.append("  timeline [s since start, backlog, delivered/s over the last 2 s]: " +
                 " ".join(f"{t}:{b}:{r}" for t, b, r in o["timeline"]))
    if "server_cpu_pct" in o:
        L.append(f"  CPU over load+drain: server {o['server_cpu_pct']}% of one core, receiver {o['rx_cpu_pct']}%")
    return "\n".join(L)


def cmd_probe(base, rx, key, n, gap_s, tsv):
    """n lone bookings (POST /v1/bookings), gap_s apart: the latency of an event with nothing
    else going on, and whether any waits for the dispatcher's idle sleep (5 s)."""
    body = ('{"member_id":"m-bench","services":["CBC"],"mode":"home_collection",'
            '"slot":{"start":"2030-01-01T09:00:00Z","end":"2030-01-01T10:00:00Z"},'
            '"address":{"pincode":"560001","lat":12.97,"lon":77.59},"partner_ref":"probe-%d"}')
    acked = {}
    for i in range(n):
        req = urllib.request.Request(base + "/v1/bookings", data=(body % i).encode(), method="POST",
                                     headers={"authorization": "Bearer " + key, "content-type": "application/json",
                                              "idempotency-key": f"probe-{i}-{time.time()}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
        acked[f"probe-{i}"] = time.time()
        time.sleep(gap_s)
    deadline = time.time() + 15
    while time.time() < deadline:
        get(rx + "/dump")
        rows = [r for r in load_rx(tsv) if r["ref"].startswith("probe-")]
        if len(rows) >= n:
            break
        time.sleep(0.2)
    lat = sorted(1000 * (r["t"] - r["occ"]) for r in rows)
    after_ack = sorted(1000 * (r["t"] - acked[r["ref"]]) for r in rows if r["ref"] in acked)
    slow = sum(1 for x in lat if x >= 1000)
    late = sum(1 for x in lat if x >= 900 * gap_s)
    early = sum(1 for x in after_ack if x < 0)
    print(f"lone events ({n} creates {1000 * gap_s:.0f} ms apart, idle server): received {len(rows)} of {n}; "
          f"commit->arrival p50 {pct(lat, .5):.1f} p90 {pct(lat, .9):.1f} p99 {pct(lat, .99):.1f} max {pct(lat, 1):.1f} ms; "
          f"{late} waited >= 0.9 x the gap (not woken by their own commit), {slow} >= 1 s; "
          f"arrival - the client's 201: p50 {pct(after_ack, .5):.1f} p99 {pct(after_ack, .99):.1f} ms, "
          f"{early} arrived before the 201; slowest: {', '.join(f'{x:.0f}' for x in lat[-5:])} ms")


def main():
    cmd = sys.argv[1]
    if cmd == "sample":
        cmd_sample(*sys.argv[2:5])
    elif cmd == "drain":
        cmd_drain(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif cmd == "probe":
        b, rx, key, n, gap, tsv = sys.argv[2:8]
        cmd_probe(b, rx, key, int(n), float(gap), tsv)
    elif cmd == "counters":
        c = counters(parse_metrics(get(sys.argv[2] + "/metrics")))
        print(" ".join(f"{k}={c[k]:.0f}" for k in COLS))
    elif cmd == "level":
        a = dict(x.split("=", 1) for x in sys.argv[2:])
        o = level(a)
        print(fmt(o))
        if a.get("out"):
            with open(a["out"], "a") as f:
                f.write(json.dumps(o) + "\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
