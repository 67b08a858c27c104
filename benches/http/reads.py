#!/usr/bin/env python3
"""Read phase of rss_100k.sh: one keep-alive connection, partner key from DX_PARTNER_KEY.

  1. pages through GET /v1/bookings?limit=200 (cursor) to the end: counts every booking
     (checks the fill survived the restart) and times each page
  2. GET /v1/bookings/{id} for GETS random ids from those pages
  3. GET /v1/members/{member}/entitlements once (a member with 100k bookings)

Usage: reads.py BASE_URL [GETS=300] [MAX_PAGES=1000]
Prints one JSON line with counts and p50/p99/max latencies (ms).
"""
import http.client
import json
import os
import random
import sys
import time
from urllib.parse import quote, urlparse

base = urlparse(sys.argv[1])
gets = int(sys.argv[2]) if len(sys.argv) > 2 else 300
max_pages = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
member = os.environ.get("DX_MEMBER", "m-bench")
hdrs = {"authorization": "Bearer " + os.environ["DX_PARTNER_KEY"]}
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=120)
errors = []


def get(path):
    t0 = time.perf_counter()
    conn.request("GET", path, headers=hdrs)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        errors.append(f"GET {path} -> {r.status}: {body[:300]!r}")
        return None, ms, len(body)
    return json.loads(body), ms, len(body)


def stats(xs):
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return {"n": len(xs), "p50_ms": round(q(0.5), 2), "p99_ms": round(q(0.99), 2), "max_ms": round(xs[-1], 2)}


ids, page_ms, cursor, pages = [], [], None, 0
t_list = time.perf_counter()
while pages < max_pages:
    path = "/v1/bookings?limit=200" + (f"&cursor={quote(str(cursor))}" if cursor else "")
    j, ms, _ = get(path)
    pages += 1
    page_ms.append(ms)
    if j is None:
        break
    ids.extend(it["id"] for it in j["items"])
    cursor = j.get("next_cursor")
    if not cursor:
        break
t_list = time.perf_counter() - t_list

get_ms = []
for bid in random.sample(ids, min(gets, len(ids))):
    _, ms, _ = get(f"/v1/bookings/{quote(bid)}")
    get_ms.append(ms)

ent, ent_ms, ent_bytes = get(f"/v1/members/{quote(member)}/entitlements")
out = {
    "bookings_listed": len(ids), "distinct_ids": len(set(ids)), "pages": pages,
    "list_total_s": round(t_list, 2), "list_page": stats(page_ms), "get": stats(get_ms),
    "entitlements_ms": round(ent_ms, 2), "entitlements_bytes": ent_bytes,
    "entitlements_moves": len(ent.get("moves", [])) if ent else None,
    "errors": len(errors), "error_samples": errors[:3],
}
print(json.dumps(out))
