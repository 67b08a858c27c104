#!/usr/bin/env bash
# benches/webhooks/throughput.sh: webhook delivery throughput, commit-to-delivery latency, outbox
# lag and exactly-once-or-more, with a healthy local receiver.
#
#   1. cargo build --release -p dxstack (BUILD=0 skips); the loadgen
#   2. receiver.py on 127.0.0.1:$RX_PORT (9911): answers 204 at once, records per POST the
#      arrival time, webhook-id and the body's id / occurred_at / type / booking / partner_ref
#   3. the release server on a fresh temp store (lib.sh: demo off, [limits] lifted), the fixture,
#      one endpoint PUT /v1/webhook-endpoints/bench {url: http://127.0.0.1:$RX_PORT/hook,
#      events: ["*"]} as the partner; the preflight booking (lib.sh) must then arrive as its
#      4 events (created, confirmed, in_progress, completed) in order, or the bench stops
#   4. PROBE lone creates (default 50, 0.1 s apart) on the idle server: the latency of a webhook
#      with nothing else going on
#   5. per level c in $LEVELS ("16 64") ("lifecycle" in the report): the shared loadgen with
#      dxstack-steps.toml (4 events per booking) for $SECS (20) s; counters sampled every 0.5 s
#      (samples-lifecycle<c>.tsv); when the load stops, wait for the outbox to drain (server:
#      delivered + dead = events committed; receiver: no new POST for 0.5 s; at most $DRAIN_MAX
#      s); then the report of the level (wh.py level): deliveries/s received, backlog at stop and
#      time to drain, arrival - occurred_at p50/p90/p99, the server's
#      dxstack_webhook_commit_to_delivery_seconds (bucket-interpolated), events committed vs
#      distinct event ids received, duplicates, per-booking order, the committer's share,
#      server/receiver CPU, loadavg; optionally (BURST_SECS) the same for creates only
#   6. GET /v1/webhook-deliveries?status=pending|dead (newest 1000) must be empty; SIGTERM
#
# Usage: benches/webhooks/throughput.sh
#   env  SECS (20), LEVELS ("16 64"), RX_PORT (9911), DRAIN_MAX (300),
#        BURST_SECS (0 = off): after the levels, creates only (../http/create-steps.toml, one
#          event per booking, no chains) at BURST_C (64) for BURST_SECS s, then the drain with
#          no API load = the dispatcher's own pace
#        PROBE (50; 0 = off), PROBE_GAP (0.1): before the levels, PROBE lone creates PROBE_GAP s
#          apart with curl-like single requests: latency of a webhook with nothing else going on
#        ENDPOINTS (1): diagnostic, register this many endpoints (same receiver, /hook/<i>),
#          so every event is delivered ENDPOINTS times
#        OUT (~/.cache/dxstack-bench/results/webhooks.jsonl), PYTHON (interpreter for the receiver),
#        and those of ../http/lib.sh (LISTEN, default here 127.0.0.1:8094; BUILD, BENCH_SHARED, BENCH_WORK, BENCH_TMP, KEEP, ...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LISTEN=${LISTEN:-127.0.0.1:8094} # a port of its own: other benches use 8090/8095
# shellcheck source=../http/lib.sh
source "$HERE/../http/lib.sh"
SECS=${SECS:-20}; LEVELS=${LEVELS:-"16 64"}; RX_PORT=${RX_PORT:-9911}; DRAIN_MAX=${DRAIN_MAX:-300}
ENDPOINTS=${ENDPOINTS:-1}
OUT=${OUT:-$WORK/results/webhooks.jsonl}
RX=http://127.0.0.1:$RX_PORT
# the real interpreter, not a pyenv shim (a shim forks: its pid would not be the receiver's)
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
RX_PID=""; SAMPLER=""
cleanup() {
  local rc=$?
  [ -z "$SAMPLER" ] || kill -TERM "$SAMPLER" 2>/dev/null || true
  dx_stop || true
  if [ -n "$RX_PID" ]; then kill -TERM "$RX_PID" 2>/dev/null || true; wait "$RX_PID" 2>/dev/null || true; fi
  (exit $rc); dx_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' /; }

dx_build
dx_build_loadgen
mkdir -p "$(dirname "$OUT")"
dx_tmp
log "load before start: $(loadavg)"

if curl -s -m 1 -o /dev/null "$RX/"; then die "something already listens on $RX (set RX_PORT)"; fi
"$PY" "$HERE/receiver.py" --port "$RX_PORT" --out "$DX_TMP/received.tsv" 2>"$DX_TMP/receiver.err" &
RX_PID=$!
for _ in $(seq 1 50); do curl -s -m 1 -o /dev/null "$RX/stats" && break; sleep 0.1; done
curl -s -m 1 -o /dev/null "$RX/stats" || die "receiver did not start: $(cat "$DX_TMP/receiver.err")"
log "receiver pid $RX_PID on $RX"

# lib.sh's dx_start takes any 200 from $BASE/readyz as "ready": make sure it will be ours
if curl -s -m 1 -o /dev/null "$BASE/readyz"; then die "something already listens on $LISTEN (set LISTEN)"; fi
dx_config "$DX_TMP"
dx_start "$DX_TMP"
sleep 0.3
kill -0 "$DX_PID" 2>/dev/null && grep -q 'dxstack listening on' "$DX_TMP/server.out" \
  || { tail -n 20 "$DX_TMP/server.err" >&2; die "the server we started is not the one answering on $LISTEN"; }
dx_fixture
ep=$(api PUT /v1/webhook-endpoints/bench "$DX_PARTNER_KEY" "{\"url\":\"$RX/hook\",\"events\":[\"*\"]}") \
  || die "could not register the webhook endpoint"
log "endpoint bench -> $RX/hook registered: $(python3 -c 'import json,sys; j=json.load(sys.stdin); j["secret"]="(hidden)"; print(json.dumps(j))' <<<"$ep")"
for i in $(seq 2 "$ENDPOINTS"); do # diagnostic: more endpoints, same receiver, another path each
  api PUT "/v1/webhook-endpoints/bench$i" "$DX_PARTNER_KEY" "{\"url\":\"$RX/hook/$i\",\"events\":[\"*\"]}" >/dev/null \
    || die "could not register endpoint bench$i"
  log "endpoint bench$i -> $RX/hook/$i registered"
done

# Preflight: the curl booking of lib.sh must arrive as its 4 events, in order.
dx_preflight
for _ in $(seq 1 100); do [ "$(curl -s "$RX/stats" | jget posts)" -ge $((4 * ENDPOINTS)) ] && break; sleep 0.1; done
curl -s -o /dev/null "$RX/dump"
types=$(awk -F'\t' '$7=="preflight-1" && $8=="/hook"{print $5}' "$DX_TMP/received.tsv" | paste -sd' ')
if [ "$types" != "booking.created booking.confirmed booking.in_progress booking.completed" ]; then
  api GET "/v1/webhook-deliveries?limit=10" "$DX_PARTNER_KEY" | head -c 3000 >&2; echo >&2
  die "preflight deliveries: expected created, confirmed, in_progress, completed in order; the receiver got: '${types}'"
fi
log "preflight webhooks ok: $types"
log "counters: $("$PY" "$HERE/wh.py" counters "$BASE")"

# run_level NAME C STEPS SECS: one loadgen run of SECS s at concurrency C, drain, report
run_level() {
  local name=$1 c=$2 steps=$3 secs=$4 run_id prefix scpu0 rcpu0 load0 load1 t0 t1 t2 drain_s backlog0 drain_status pcts report
  run_id="wh-$name$c-$(date +%s)"
  prefix=$(sed -n 's/^id_prefix *= *"\(.*\)".*/\1/p' "$steps"); prefix=${prefix:-dx}  # loadgen {id} = <id_prefix>-<run>-<seq>
  curl -s "$BASE/metrics" >"$DX_TMP/m-$name$c-start.txt"
  scpu0=$(dx_cpu "$DX_PID"); rcpu0=$(dx_cpu "$RX_PID")
  load0=$(loadavg)
  "$PY" "$HERE/wh.py" sample "$BASE" "$RX" "$DX_TMP/samples-$name$c.tsv" &
  SAMPLER=$!
  log "$name c=$c: loadgen $(basename "$steps") $secs s (run $run_id), load $load0"
  t0=$(date +%s.%N)
  "$LG" --config "$steps" --base-url "$BASE" --c "$c" --n 100000000 --max-seconds "$secs" \
    --threads 1 --label "webhooks-$name" --run-id "$run_id" --quiet >"$DX_TMP/loadgen-$name$c.json"
  t1=$(date +%s.%N)
  curl -s "$BASE/metrics" >"$DX_TMP/m-$name$c-stop.txt"
  load1=$(loadavg)
  log "$name c=$c: load stopped; $("$PY" "$HERE/wh.py" counters "$BASE"); waiting for the outbox to drain (max $DRAIN_MAX s)"
  read -r drain_s backlog0 drain_status < <("$PY" "$HERE/wh.py" drain "$BASE" "$RX" "$DRAIN_MAX" "$ENDPOINTS")
  t2=$(date +%s.%N)
  echo "t_start=$t0 t_stop=$t1 t_drained=$t2 drain_s=$drain_s drain_status=$drain_status ref_prefix=$prefix-$run_id-" >"$DX_TMP/times-$name$c.txt"
  curl -s "$BASE/metrics" >"$DX_TMP/m-$name$c-drained.txt"
  scpu1=$(dx_cpu "$DX_PID"); rcpu1=$(dx_cpu "$RX_PID")
  kill -TERM "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  curl -s -o /dev/null "$RX/dump"
  pcts=$(python3 -c "w=$t2-$t0; print(f'{100*($scpu1-$scpu0)/w:.0f} {100*($rcpu1-$rcpu0)/w:.0f}')")
  report=$("$PY" "$HERE/wh.py" level name="$name " loadgen="$DX_TMP/loadgen-$name$c.json" \
    m_start="$DX_TMP/m-$name$c-start.txt" m_stop="$DX_TMP/m-$name$c-stop.txt" m_drained="$DX_TMP/m-$name$c-drained.txt" \
    rx_tsv="$DX_TMP/received.tsv" samples="$DX_TMP/samples-$name$c.tsv" endpoints="$ENDPOINTS" \
    t_start="$t0" t_stop="$t1" drain_s="$drain_s" drain_status="$drain_status" ref_prefix="$prefix-$run_id-" \
    load_start="$load0" load_end="$load1" server_cpu_pct="${pcts% *}" rx_cpu_pct="${pcts#* }" out="$OUT")
  echo "$report"
  summary+=("$report")
  python3 - "$DX_TMP/loadgen-$name$c.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for e in r["error_samples"][:5]:
    print("  loadgen error sample:", e)
PY
  [ "$drain_status" = ok ] || log "WARNING: $name c=$c: the outbox did not drain within $DRAIN_MAX s"
  kill -0 "$DX_PID" 2>/dev/null || { tail -n 40 "$DX_TMP/server.err"; die "server died at $name c=$c"; }
}

summary=()
if [ "${PROBE:-50}" != 0 ]; then
  probe=$("$PY" "$HERE/wh.py" probe "$BASE" "$RX" "$DX_PARTNER_KEY" "${PROBE:-50}" "${PROBE_GAP:-0.1}" "$DX_TMP/received.tsv")
  echo "$probe"; summary+=("$probe (load $(loadavg))")
fi
for c in $LEVELS; do
  run_level lifecycle "$c" "$SHARED/dxstack-steps.toml" "$SECS"
done
# Optional: a burst of creates only (one event per booking, no per-booking chains), then the
# drain with no API load: the dispatcher's own pace.
if [ "${BURST_SECS:-0}" != 0 ]; then
  run_level burst "${BURST_C:-64}" "$HERE/../http/create-steps.toml" "$BURST_SECS"
fi

pending=$(api GET "/v1/webhook-deliveries?status=pending&limit=1000" "$DX_PARTNER_KEY" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
dead=$(api GET "/v1/webhook-deliveries?status=dead&limit=1000" "$DX_PARTNER_KEY" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
store_kb=$(du -sk "$DX_TMP/data" | cut -f1)
dx_stop
kill -TERM "$RX_PID" 2>/dev/null || true; wait "$RX_PID" 2>/dev/null || true; RX_PID=""

echo "=== webhooks throughput summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores) ==="
for s in "${summary[@]}"; do echo "$s"; done
echo "GET /v1/webhook-deliveries (newest deliveries, at most 20,000 scanned): pending $pending, dead $dead"
echo "store on disk $(mb "$store_kb") MB; server stderr: $errlines ERROR/panic lines; SIGTERM exit code ${DX_STOP_RC:-?}"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
echo "results appended to $OUT; temp dir $DX_TMP (KEEP=1 keeps it)"
true
