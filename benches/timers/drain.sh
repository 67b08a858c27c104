#!/usr/bin/env bash
# benches/timers/drain.sh: draining an overdue timer backlog after a crash, and the API latency
# meanwhile.
#
#   1. build (BUILD=0 skips), fresh store, release server on $LISTEN (127.0.0.1:8093), demo off,
#      [sla] reroute_on_acceptance_breach = false, [engine] timer_chunk_max = $CHUNK (256)
#   2. fixture of benches/http + preflight; p-bench's SLA terms: accept_within $ACCEPT (90s)
#   3. fill: loadgen (../http/create-steps.toml, create only) makes $N (100000) bookings at
#      concurrency $C (64); each arms an acceptance at-risk timer (+80 % = 72 s) and a due timer
#      (+90 s), so 2 x N timers. The fill must end before the first at-risk timer is due.
#   4. SIGKILL the server; wait until the last booking's acceptance is $MARGIN s (3) overdue
#   5. restart on the same store. From the launch: /metrics polled every 200 ms until
#      dxstack_sla_outcomes_total{kind="acceptance",state="breached"} = N (the counters restart
#      at 0; 2 x N timers fire: at-risk then due). Meanwhile a probe (timers.py probe, one
#      connection) loops GET /v1/bookings/{random filled id} + POST /v1/bookings every
#      $PROBE_INTERVAL s (0.05); its p50/p99 are the API latency during the drain
#   6. peak RSS of the restarted server (VmHWM) at the end of the drain; server CPU and group
#      commits over the drain; then (VERIFY=1) every filled booking read back: acceptance SLA
#      breached, one sla_breach exception each
#
# Usage: benches/timers/drain.sh
#   env  N (100000), C (64), ACCEPT (90s; whole seconds), MARGIN (3), PROBE_INTERVAL (0.05),
#        VERIFY (1), TIMELINES (200: booking timelines sampled for duplicate audit actions),
#        CHUNK (256), and those of benches/http/lib.sh (LISTEN, BUILD, KEEP, ...)
# Targets: drain < 20 s, API p99 < 100 ms.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tlib.sh
source "$HERE/tlib.sh"
PROBE=""; WATCH=""
cleanup() {
  local rc=$?
  [ -z "$PROBE" ] || kill "$PROBE" 2>/dev/null || true
  [ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null || true
  (exit $rc); dx_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=${N:-100000}; C=${C:-64}; ACCEPT=${ACCEPT:-90s}; MARGIN=${MARGIN:-3}
PROBE_INTERVAL=${PROBE_INTERVAL:-0.05}; VERIFY=${VERIFY:-1}
accept_s=${ACCEPT%s}
[[ "$accept_s" =~ ^[0-9]+$ ]] || die "ACCEPT must be whole seconds like 90s (got $ACCEPT)"
risk_s=$(python3 -c "print($accept_s * 0.8)")

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
t_start "$DX_TMP"
dx_fixture
dx_preflight
t_provider_sla "$ACCEPT" 2h

RUN=$(date +%s)
PREFIX="drain-$RUN-"
fill_t0=$(date +%s.%N)
log "fill: $N creates at c=$C (acceptance at-risk +${risk_s}s, due +${accept_s}s after each create)"
line=$("$LG" --config "$REPO/benches/http/create-steps.toml" --base-url "$BASE" --c "$C" --n "$N" \
         --max-seconds "$risk_s" --threads 1 --id-prefix drain --run-id "$RUN" --label drain-fill --quiet)
fill_t1=$(date +%s.%N)
echo "$line" >"$DX_TMP/fill.json"
fill_line=$(python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); s = r["steps"][0]
print(f"fill: {r['bookings_done']} bookings created in {r['elapsed_s']:.1f} s = {r['bookings_per_s']:.0f}/s, "
      f"create p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms, errors {r['errors']}")
for e in r["error_samples"][:3]:
    print("  error sample:", e)
PY
)
echo "$fill_line"
done_n=$(jget bookings_done <<<"$line")
[ "$done_n" = "$N" ] || die "fill made $done_n of $N bookings: lower N or raise ACCEPT"
fired=$(t_metric 'dxstack_sla_outcomes_total{kind="acceptance",state="at_risk"}')
[ "$fired" = 0 ] || die "$fired acceptance at-risk timers fired before the kill: the fill was too slow for ACCEPT=$ACCEPT"
armed=$(t_metric 'dxstack_timers_armed_total')
$TPY ids "$BASE" 2000 --prefix "$PREFIX" >"$DX_TMP/probe-ids"
read -r hwm_fill rss_fill < <(dx_mem "$DX_PID")
log "timers armed: $armed; RSS $(mb "$rss_fill") MB (peak $(mb "$hwm_fill") MB); SIGKILL $DX_PID"
kill -KILL "$DX_PID"; wait "$DX_LAUNCH_PID" 2>/dev/null || true
DX_PID=""; DX_LAUNCH_PID=""
kill_t=$(date +%s.%N)
store_kb=$(du -sk "$DX_TMP/data" | cut -f1)

# the last booking was created just before fill_t1: wait until its due timer is MARGIN s overdue
wake=$(python3 -c "print($fill_t1 + $accept_s + $MARGIN)")
log "killed; sleeping $(python3 -c "print(f'{$wake - $kill_t:.0f}')") s until every acceptance timer is >= ${MARGIN}s overdue"
sleep "$(python3 -c "import time; print(max(0, $wake - time.time()))")"
overdue_first=$(python3 -c "import time; print(f'{time.time() - $fill_t0 - $risk_s:.0f}')")

t_launch=$(date +%s.%N); busy0=$(t_busy)
$TPY watch "$BASE" 'dxstack_sla_outcomes_total{kind="acceptance",state="breached"}' \
  --target "$N" --interval 0.2 --timeout 600 --t0 "$t_launch" --log "$DX_TMP/watch.log" >"$DX_TMP/watch.json" &
WATCH=$!
t_start "$DX_TMP"
ready_s=$DX_READY_S
dx_snapshot "$DX_PID" "$DX_TMP/snap0"
rm -f "$DX_TMP/probe.stop"
$TPY probe "$BASE" --ids "$DX_TMP/probe-ids" --stop "$DX_TMP/probe.stop" --out "$DX_TMP/probe.json" \
  --interval "$PROBE_INTERVAL" &
PROBE=$!
wait "$WATCH" || true; WATCH=""
busy1=$(t_busy); srv1=$(dx_cpu "$DX_PID"); t_end=$(date +%s.%N)
touch "$DX_TMP/probe.stop"; wait "$PROBE" || true; PROBE=""
dx_snapshot "$DX_PID" "$DX_TMP/snap1"
read -r hwm_drain rss_drain < <(dx_mem "$DX_PID")
watch=$(cat "$DX_TMP/watch.json")
probe=$(cat "$DX_TMP/probe.json" 2>/dev/null || echo '{}')
drain_delta=$(dx_snapshot_delta "$DX_TMP/snap0" "$DX_TMP/snap1")
others=$(t_others "$busy0" "$busy1" 0 "$srv1" "$(python3 -c "print($t_end - $t_launch)")")
risk_n=$(t_metric 'dxstack_sla_outcomes_total{kind="acceptance",state="at_risk"}')
breach_n=$(t_metric 'dxstack_sla_outcomes_total{kind="acceptance",state="breached"}')
fired_n=$(t_metric 'dxstack_timer_lateness_seconds_count')
log "drain: $watch"

scan='{}'
if [ "$VERIFY" = 1 ]; then
  log "verifying: reading back every booking"
  scan=$($TPY scan "$BASE" acceptance --prefix "$PREFIX" --expect "$N" --timelines "${TIMELINES:-200}")
fi
sleep 1
breach_after=$(t_metric 'dxstack_sla_outcomes_total{kind="acceptance",state="breached"}')
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
load=$(cut -d' ' -f1-3 /proc/loadavg)
dx_stop

echo "=== drain summary: $N bookings x 2 acceptance timers overdue at restart, chunk $CHUNK ==="
echo "$fill_line"
echo "store on disk at the kill: $(mb "$store_kb") MB; timers armed before the kill: $armed"
echo "restart: ready (HTTP) after ${ready_s} s; oldest timer ${overdue_first} s overdue, newest ${MARGIN} s"
python3 - "$watch" "$probe" "$scan" "$N" "$ready_s" <<'PY'
import json, sys
w, p, s, n, ready = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
t = w.get("reached_at_s")
if t is None:
    print(f"DRAIN DID NOT FINISH: acceptance breached counter at {w.get('last_value')} of {n} when the watch gave up")
else:
    print(f"drain: all {n} acceptance SLAs breached {t:.1f} s after the launch ({t - ready:.1f} s after ready; "
          f"first breach visible at +{w['first_nonzero_at_s']} s; 200 ms polls) = {2 * n / t:.0f} timers/s "
          f"-> target < 20 s: {'PASS' if t < 20 else 'FAIL'}")
if p and not p.get("all_ms", {}).get("n"):
    print("API probe during the drain: no samples (the drain ended before the probe's first request)")
elif p:
    g, c, a = p["get_ms"], p["create_ms"], p["all_ms"]
    print(f"API probe during the drain ({p['iterations']} x GET+create over {p['seconds']} s): "
          f"GET p50 {g.get('p50')} ms p99 {g.get('p99')} ms max {g.get('max')} ms; "
          f"create p50 {c.get('p50')} ms p99 {c.get('p99')} ms max {c.get('max')} ms; "
          f"both p99 {a.get('p99')} ms -> target < 100 ms: {'PASS' if a.get('p99', 1e9) < 100 else 'FAIL'}; "
          f"errors {p['errors']} {p['error_samples'][:2]}")
if s:
    print(f"read back: {s['bookings']} bookings (expected {n}); acceptance SLA states {s['sla_states']}; "
          f"booking states {s['booking_states']}; sla_breach exceptions per booking "
          f"{s['sla_breach_exceptions_per_booking']}; problems {s['problems']} {s['problem_samples']}"
          + (f"; {s['problem_count_mismatch']}" if 'problem_count_mismatch' in s else ""))
    if "timelines" in s:
        t = s["timelines"]
        print(f"audit actions per booking in {t['sampled']} sampled timelines ({{occurrences: bookings}}): "
              + ", ".join(f"{k} {v}" for k, v in sorted(t["actions"].items())))
PY
echo "counters after restart: acceptance at_risk $risk_n, breached $breach_n (1 s after the verify: $breach_after); timers fired (lateness histogram count) $fired_n"
echo "server over the drain: $drain_delta"
echo "CPU used outside the server from the launch to the last breach: $others (the probe and poller, and other sessions' builds/tests)"
echo "peak RSS during the drain (VmHWM of the restarted server): $(mb "$hwm_drain") MB (RSS at end $(mb "$rss_drain") MB; before the kill: peak $(mb "$hwm_fill") MB)"
echo "load average at end: $load"
echo "server stderr: $errlines ERROR/panic lines"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
true
