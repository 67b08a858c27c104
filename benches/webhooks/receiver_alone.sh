#!/usr/bin/env bash
# benches/webhooks/receiver_alone.sh: how fast is receiver.py on its own? (so the webhook
# bench knows whether the receiver, not DxStack, is its limit)
#
# Starts receiver.py on $RX_PORT (9911) and drives it with the shared loadgen
# (receiver-steps.toml: one ~1 KB webhook-shaped POST per iteration, 204 expected) for $SECS (10)
# at each concurrency in $LEVELS ("16 64"; the dispatcher keeps at most 16 in flight per
# endpoint), 1 loadgen thread. Prints req/s, p50/p99, the receiver's CPU, and checks the
# receiver recorded every request.
#
# Usage: benches/webhooks/receiver_alone.sh     env SECS, LEVELS, RX_PORT, BENCH_SHARED, BENCH_WORK
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../http/lib.sh
source "$HERE/../http/lib.sh"
SECS=${SECS:-10}; LEVELS=${LEVELS:-"16 64"}; RX_PORT=${RX_PORT:-9911}
RX_PID=""; RX_TMP=$(mktemp -d /tmp/dxrx.XXXXXX)
cleanup() { local rc=$?; [ -z "$RX_PID" ] || kill -TERM "$RX_PID" 2>/dev/null || true; wait 2>/dev/null || true
            [ $rc -ne 0 ] && log "kept $RX_TMP" || rm -rf "$RX_TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

dx_build_loadgen
# the real interpreter, not a pyenv shim (a shim forks: its pid is not the receiver's)
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
"$PY" "$HERE/receiver.py" --port "$RX_PORT" --out "$RX_TMP/recv.tsv" 2>"$RX_TMP/receiver.err" &
RX_PID=$!
for _ in $(seq 1 50); do curl -s -m 1 "http://127.0.0.1:$RX_PORT/stats" >/dev/null 2>&1 && break; sleep 0.1; done
log "receiver pid $RX_PID on 127.0.0.1:$RX_PORT; load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $LEVELS; do
  before=$(curl -s "http://127.0.0.1:$RX_PORT/stats" | jget posts)
  cpu0=$(dx_cpu "$RX_PID"); t0=$(date +%s.%N)
  line=$("$LG" --config "$HERE/receiver-steps.toml" --base-url "http://127.0.0.1:$RX_PORT" --c "$c" \
           --n 100000000 --max-seconds "$SECS" --threads 1 --label receiver --run-id "rx-c$c-$(date +%s)" --quiet)
  cpu1=$(dx_cpu "$RX_PID"); t1=$(date +%s.%N)
  after=$(curl -s "http://127.0.0.1:$RX_PORT/stats" | jget posts)
  python3 - "$line" "$c" "$cpu0" "$cpu1" "$t0" "$t1" "$before" "$after" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); c = sys.argv[2]
cpu0, cpu1, t0, t1, b, a = map(float, sys.argv[3:9]); load = sys.argv[9]
s = r["steps"][0]
ok = int(a - b) == r["bookings_done"]
print(f"receiver alone c={c}: {r['steps_per_s']:,.0f} req/s, p50 {s['p50_ms']:.2f} ms p99 {s['p99_ms']:.2f} ms, "
      f"errors {r['errors']}; receiver CPU {100*(cpu1-cpu0)/(t1-t0):.0f}% of one core; "
      f"recorded {int(a-b)} of {r['bookings_done']} ({'ok' if ok else 'MISMATCH'}); loadavg {load}", flush=True)
PY
done
