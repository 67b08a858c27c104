#!/usr/bin/env python3
"""benches/webhooks/receiver.py: a fast local webhook receiver for the webhook benches.

A single-threaded asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) on 127.0.0.1.
Every POST is answered `204 No Content` at once (or with the status given by --status) and
recorded in memory as (arrival time, webhook-id header, raw body). The JSON bodies are only
parsed when the records are written out, so the hot path is: read, split headers, append.

  GET  /stats  -> {"requests": N, "posts": N, "first": t, "last": t}  (t = epoch seconds)
  GET  /dump   -> writes the records to --out now, answers {"written": N, "path": ...}
  POST <any>   -> recorded, answered 204 (or --status)

On SIGTERM/SIGINT the records are written to --out and the process exits 0.

--out is TSV, one line per POST received:
  arrival_epoch_s  webhook-id  event_id  occurred_at_epoch_s  type  booking_id  partner_ref  path
(`occurred_at` comes from the body; `-` where a field is missing or the body is not JSON.)

Usage: receiver.py --port 9911 --out /tmp/recv.tsv [--status 204] [--ready-file F]
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time
from datetime import datetime

RECORDS = []  # (arrival, webhook_id bytes, body bytes, path bytes)
STATS = {"requests": 0, "posts": 0, "first": None, "last": None}


def parse_ts(s):
    # "2026-12-04T17:31:02.123Z" or "...02Z"
    if not isinstance(s, str):
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def write_out(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for t, wid, body, p in RECORDS:
            eid = occ = typ = bid = ref = "-"
            try:
                j = json.loads(body)
                eid = str(j.get("id", "-"))
                o = parse_ts(j.get("occurred_at"))
                occ = f"{o:.3f}" if o is not None else "-"
                typ = str(j.get("type", "-"))
                d = j.get("data") or {}
                if isinstance(d, dict):
                    bid = str(d.get("booking_id") or d.get("id") or "-")
                    ref = str(d.get("partner_ref") or "-")
            except Exception:
                pass
            f.write(f"{t:.6f}\t{wid.decode('latin-1') or '-'}\t{eid}\t{occ}\t{typ}\t{bid}\t{ref}\t{p.decode('latin-1')}\n")
    os.replace(tmp, path)
    return len(RECORDS)


class Http(asyncio.Protocol):
    status_line = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        while True:
            buf = self.buf
            he = buf.find(b"\r\n\r\n")
            if he < 0:
                break
            head = buf[:he]
            # content-length (case-insensitive), webhook-id
            lower = head.lower()
            clen = 0
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                clen = int(lower[i + 17 : j if j >= 0 else len(lower)].strip())
            elif b"\r\ntransfer-encoding:" in lower:
                self.t.write(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.t.close()
                return
            end = he + 4 + clen
            if len(buf) < end:
                break
            now = time.time()
            body = buf[he + 4 : end]
            self.buf = buf[end:]
            sp1 = head.find(b" ")
            sp2 = head.find(b" ", sp1 + 1)
            method, path = head[:sp1], head[sp1 + 1 : sp2]
            STATS["requests"] += 1
            if method == b"POST":
                wid = b""
                k = lower.find(b"\r\nwebhook-id:")
                if k >= 0:
                    e = lower.find(b"\r\n", k + 2)
                    wid = head[k + 13 : e if e >= 0 else len(head)].strip()
                RECORDS.append((now, wid, body, path))
                STATS["posts"] += 1
                if STATS["first"] is None:
                    STATS["first"] = now
                STATS["last"] = now
                out.append(RESP)
            elif path.startswith(b"/stats"):
                out.append(json_resp(STATS))
            elif path.startswith(b"/dump"):
                n = write_out(ARGS.out)
                out.append(json_resp({"written": n, "path": ARGS.out}))
            else:
                out.append(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        if out:
            self.t.write(b"".join(out))


def json_resp(obj):
    b = json.dumps(obj).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(b), b)


async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Http, "127.0.0.1", ARGS.port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if ARGS.ready_file:
        with open(ARGS.ready_file, "w") as f:
            f.write(str(os.getpid()))
    print(f"receiver listening on http://127.0.0.1:{ARGS.port} (pid {os.getpid()})", file=sys.stderr, flush=True)
    await stop.wait()
    srv.close()
    n = write_out(ARGS.out)
    print(f"receiver: {n} POSTs written to {ARGS.out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9911)
    ap.add_argument("--out", required=True)
    ap.add_argument("--status", type=int, default=204)
    ap.add_argument("--ready-file")
    ARGS = ap.parse_args()
    if ARGS.status == 204:
        RESP = b"HTTP/1.1 204 No Content\r\n\r\n"
    else:
        RESP = b"HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n" % ARGS.status
    asyncio.run(main())
