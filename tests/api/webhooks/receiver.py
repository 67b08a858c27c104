#!/usr/bin/env python3
"""A webhook receiver for DxStack's black-box tests.

Every request to any path other than /_control and /_log is verified INDEPENDENTLY of DxStack
with the `standardwebhooks` package, logged, then answered per a configurable plan.

    python3 receiver.py [--port N] [--config JSON]

--config takes the same JSON as POST /_control and applies it before the first request.
Prints `listening <port>` on stdout once it accepts connections (port 0 = any free port).

Control (JSON):
  POST /_control {"secrets": {"/path": ["whsec_..", ..]},
                  "plans": {"/path" or "*": {"first": [500, 500], "then": 200}}}
      merges into the current configuration. A plan answers the k-th request carrying one
      `webhook-id` (k = 0, 1, ..) with first[k], and with `then` once `first` is used up.
  GET /_log   every logged request, oldest first, as a JSON array of objects:
      seq, at_ms, path, webhook_id, webhook_timestamp, signatures, verified, verified_by,
      sig_valid, error, status, attempt, type, event_id, partner_id, booking_id, state, body
      where verified = the whole request verifies with one of the path's secrets,
      verified_by[i] = it verifies with secret i, and sig_valid[j][i] = the request carrying
      only its j-th signature verifies with secret i (all via standardwebhooks.Webhook.verify).
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
STATE = {"secrets": {}, "plans": {"*": {"first": [], "then": 200}}, "log": [], "seen": {}}


def verify(secret, body, headers):
    """(ok, error) for one secret over the raw body and the given headers."""
    try:
        Webhook(secret).verify(body, headers)
        return True, None
    except Exception as e:  # noqa: BLE001 - any failure is a verification failure
        return False, f"{type(e).__name__}: {e}"


def record(path, headers, body):
    """Verifies and logs one delivery; returns the status to answer."""
    hdrs = {k.lower(): v for k, v in headers.items()}
    msg_id = hdrs.get("webhook-id", "")
    sig_header = hdrs.get("webhook-signature", "")
    signatures = [s for s in sig_header.split(" ") if s]
    with LOCK:
        secrets = list(STATE["secrets"].get(path, []))
        plan = STATE["plans"].get(path) or STATE["plans"]["*"]
        attempt = STATE["seen"].get((path, msg_id), 0)
        STATE["seen"][(path, msg_id)] = attempt + 1
    verified_by, errors = [], []
    for s in secrets:
        ok, err = verify(s, body, hdrs)
        verified_by.append(ok)
        if err:
            errors.append(err)
    sig_valid = []
    for sig in signatures:
        only = dict(hdrs)
        only["webhook-signature"] = sig
        sig_valid.append([verify(s, body, only)[0] for s in secrets])
    first = plan.get("first", [])
    status = first[attempt] if attempt < len(first) else plan.get("then", 200)
    try:
        payload = json.loads(body)
    except Exception:  # noqa: BLE001
        payload = None
    data = payload.get("data") if isinstance(payload, dict) else None
    data = data if isinstance(data, dict) else {}
    entry = {
        "at_ms": int(time.time() * 1000),
        "path": path,
        "webhook_id": msg_id,
        "webhook_timestamp": hdrs.get("webhook-timestamp"),
        "content_type": hdrs.get("content-type"),
        "signatures": signatures,
        "verified": any(verified_by),
        "verified_by": verified_by,
        "sig_valid": sig_valid,
        "error": None if any(verified_by) else ("; ".join(errors) or "no secret configured"),
        "status": status,
        "attempt": attempt,
        "type": payload.get("type") if isinstance(payload, dict) else None,
        "event_id": payload.get("id") if isinstance(payload, dict) else None,
        "partner_id": payload.get("partner_id") if isinstance(payload, dict) else None,
        "occurred_at": payload.get("occurred_at") if isinstance(payload, dict) else None,
        "booking_id": data.get("id"),
        "state": data.get("state"),
        "body": body.decode("utf-8", errors="replace"),
    }
    with LOCK:
        entry["seq"] = len(STATE["log"])
        STATE["log"].append(entry)
    return status


def merge(update):
    with LOCK:
        for path, secrets in (update.get("secrets") or {}).items():
            STATE["secrets"][path] = list(secrets)
        for path, plan in (update.get("plans") or {}).items():
            STATE["plans"][path] = {"first": list(plan.get("first", [])), "then": plan.get("then", 200)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _read(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _answer(self, status, obj):
        out = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                snapshot = list(STATE["log"])
            self._answer(200, snapshot)
        else:
            self._answer(404, {"error": "unknown"})

    def do_POST(self):
        body = self._read()
        if self.path == "/_control":
            merge(json.loads(body or b"{}"))
            self._answer(200, {"ok": True})
            return
        status = record(self.path, dict(self.headers.items()), body)
        self._answer(status, {"received": status < 300, "status": status})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", default="{}")
    args = ap.parse_args()
    merge(json.loads(args.config))
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
