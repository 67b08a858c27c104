#!/usr/bin/env bash
# benches/timers/lateness.sh: lateness of N durable SLA timers that all fall due at one instant.
#
#   1. build (BUILD=0 skips), fresh store, release server on $LISTEN (127.0.0.1:8093), demo off,
#      [sla] reroute_on_acceptance_breach = false, [engine] timer_chunk_max = $CHUNK (256)
#   2. fixture of benches/http (partner, CBC, provider p-bench, policy, member) + preflight, then
#      p-bench's SLA terms set to accept_within "1h", fulfil_grace "1s"
#   3. T = now + $LEAD s (60), rounded up to a whole second. loadgen (create-accept-steps.toml)
#      creates and accepts $N (10000) bookings at concurrency $C (64), all with the slot
#      [T - 30 min, T]: every one arms a fulfilment SLA due at exactly T + 1 s (its at-risk timer
#      fires earlier, at accept + 80 % of the window, i.e. ~10 s before T)
#   4. from T - 1 s: /metrics polled every 100 ms until
#      dxstack_sla_outcomes_total{kind="fulfilment",state="breached"} reaches N (wall clock of the
#      last breach becoming visible, relative to due); server CPU and group commits over the burst
#   5. every booking read back (GET /v1/bookings list pages): lateness = breached_at - due_at of
#      the fulfilment entry; p50/p99/max, the last one relative to due; one sla_breach exception
#      each; peak RSS (VmHWM) before and after the burst
#
# Usage: benches/timers/lateness.sh
#   env  N (10000), C (64), LEAD (60: seconds from the fixture to T; must cover the setup),
#        CHUNK (256), TIMELINES (200: booking timelines sampled for duplicate audit actions),
#        and those of benches/http/lib.sh (LISTEN, BUILD, KEEP, BENCH_TMP, ...)
# Targets: every timer fired within 2 s of due, p99 < 1 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tlib.sh
source "$HERE/tlib.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM

N=${N:-10000}; C=${C:-64}; LEAD=${LEAD:-60}
# SPREAD=k: k groups of N/k bookings whose slots end k evenly spaced instants apart within one
# second (T, T + 1000/k ms, ...), so the N timers fall due within the same second instead of
# at one instant (SPREAD=1, the default and the worst case).
SPREAD=${SPREAD:-1}
[ $((N % SPREAD)) = 0 ] || die "N ($N) must be a multiple of SPREAD ($SPREAD)"

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
t_start "$DX_TMP"
dx_fixture
dx_preflight
t_provider_sla 1h 1s

T=$(( $(date +%s) + LEAD ))
DUE=$((T + 1))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
export DX_SLOT_START; DX_SLOT_START=$(iso $((T - 1800)))
export DX_SLOT_END; DX_SLOT_END=$(iso "$T")
RUN=$(date +%s)
PREFIX="late"  # every group: partner_ref = late<g>-<run>-<seq>
log "slot [$DX_SLOT_START, $DX_SLOT_END]: $N fulfilment timers due at $(iso "$DUE") (in $((DUE - $(date +%s))) s), in $SPREAD instant(s)"

t0=$(date +%s.%N)
lines=()
for ((g = 0; g < SPREAD; g++)); do
  if [ "$SPREAD" -gt 1 ]; then
    # Slot end T + g·1000/SPREAD ms: its fulfilment timer is due that much after T + 1 s.
    DX_SLOT_END=$(date -u -d "@$T.$(printf '%03d' $((g * 1000 / SPREAD)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
  fi
  lines+=("$("$LG" --config "$HERE/create-accept-steps.toml" --base-url "$BASE" --c "$C" \
         --n $((N / SPREAD)) --max-seconds "$LEAD" --threads 1 --id-prefix "late$g" --run-id "$RUN" \
         --label lateness-setup --quiet)")
done
# One summary line for all groups: totals added, latencies of the largest p99.
line=$(python3 - "${lines[@]}" <<'PY'
import json, sys
rs = [json.loads(a) for a in sys.argv[1:]]
out = max(rs, key=lambda r: max(s["p99_ms"] for s in r["steps"]))
for k in ("bookings_done", "errors"):
    out[k] = sum(r[k] for r in rs)
out["elapsed_s"] = sum(r["elapsed_s"] for r in rs)
out["steps_per_s"] = sum(r["steps_per_s"] * r["elapsed_s"] for r in rs) / out["elapsed_s"]
out["error_samples"] = [e for r in rs for e in r["error_samples"]]
print(json.dumps(out))
PY
)
echo "$line" >"$DX_TMP/setup.json"
setup_s=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
done_n=$(jget bookings_done <<<"$line"); errs=$(jget errors <<<"$line")
setup_line=$(python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
s = {x["name"]: x for x in r["steps"]}
print(f"setup: {r['bookings_done']} bookings created+accepted in {r['elapsed_s']:.1f} s "
      f"({r['steps_per_s']:.0f} requests/s); create p99 {s['create']['p99_ms']:.1f} ms, "
      f"accept p99 {s['accept']['p99_ms']:.1f} ms; errors {r['errors']}")
for e in r["error_samples"][:3]:
    print("  error sample:", e)
PY
)
echo "$setup_line"
[ "$done_n" = "$N" ] || die "setup made $done_n of $N bookings ($errs errors; see above). Raise LEAD or lower N."
left=$((DUE - $(date +%s)))
[ "$left" -ge 3 ] || die "setup took ${setup_s}s and ended ${left}s before due: raise LEAD (now $LEAD)"
read -r hwm_setup rss_setup < <(dx_mem "$DX_PID")
log "setup done ${left}s before due; RSS $(mb "$rss_setup") MB, peak so far $(mb "$hwm_setup") MB"

armed=$(t_metric 'dxstack_timers_armed_total')
risk=$(t_metric 'dxstack_sla_outcomes_total{kind="fulfilment",state="at_risk"}')
log "timers armed so far: $armed; fulfilment at_risk fired so far: $risk"

# sleep until T (1 s before due), then snapshot and watch
sleep "$(python3 -c "import time; print(max(0, $T - time.time()))")"
curl -s -m 10 "$BASE/metrics" >"$DX_TMP/metrics.before"
dx_snapshot "$DX_PID" "$DX_TMP/snap0"
busy0=$(t_busy); srv0=$(dx_cpu "$DX_PID"); w0=$(date +%s.%N)
breached0=$(t_metric 'dxstack_sla_outcomes_total{kind="fulfilment",state="breached"}')
[ "$breached0" = 0 ] || log "WARNING: $breached0 fulfilment breaches already before due"
watch=$($TPY watch "$BASE" 'dxstack_sla_outcomes_total{kind="fulfilment",state="breached"}' \
          --target "$N" --interval 0.1 --timeout 120 --t0 "$DUE" --log "$DX_TMP/watch.log")
busy1=$(t_busy); srv1=$(dx_cpu "$DX_PID"); w1=$(date +%s.%N)
dx_snapshot "$DX_PID" "$DX_TMP/snap1"
curl -s -m 10 "$BASE/metrics" >"$DX_TMP/metrics.after"
others=$(t_others "$busy0" "$busy1" "$srv0" "$srv1" "$(python3 -c "print($w1 - $w0)")")
read -r hwm_burst rss_burst < <(dx_mem "$DX_PID")
burst_delta=$(dx_snapshot_delta "$DX_TMP/snap0" "$DX_TMP/snap1")
hist=$(t_hist_delta "$DX_TMP/metrics.before" "$DX_TMP/metrics.after" dxstack_timer_lateness_seconds)
log "watch: $watch"

sleep 1
scan=$($TPY scan "$BASE" fulfilment --prefix "$PREFIX" --expect "$N" --out "$DX_TMP/lateness.json" \
         --timelines "${TIMELINES:-200}")
breached=$(t_metric 'dxstack_sla_outcomes_total{kind="fulfilment",state="breached"}')
risk=$(t_metric 'dxstack_sla_outcomes_total{kind="fulfilment",state="at_risk"}')
armed=$(t_metric 'dxstack_timers_armed_total')
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
read -r _ rss_end < <(dx_mem "$DX_PID")
load=$(cut -d' ' -f1-3 /proc/loadavg)
dx_stop

if [ "$SPREAD" = 1 ]; then
  echo "=== lateness summary: $N fulfilment timers due at one instant ($(iso "$DUE")), chunk $CHUNK ==="
else
  echo "=== lateness summary: $N fulfilment timers due within one second from $(iso "$DUE") ($SPREAD instants $((1000 / SPREAD)) ms apart), chunk $CHUNK ==="
fi
echo "$setup_line"
python3 - "$scan" "$watch" "$N" <<'PY'
import json, sys
s, w, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
q = s["lateness_ms"]
print(f"read back: {s['bookings']} bookings (expected {n}); fulfilment SLA states {s['sla_states']}; "
      f"booking states {s['booking_states']}; distinct due_at {s['distinct_due_at']}")
if q.get("n"):
    print(f"lateness (breached_at - due_at): p50 {q['p50']} ms, p90 {q['p90']} ms, p99 {q['p99']} ms, "
          f"max {q['max']} ms, min {q['min']} ms; first fired +{q['min']} ms, last fired +{q['max']} ms "
          f"after due (span {s['fire_span_ms']} ms)")
    print(f"targets: all within 2 s: {'PASS' if q['max'] <= 2000 and q['n'] == n else 'FAIL'}; "
          f"p99 < 1 s: {'PASS' if q['p99'] < 1000 else 'FAIL'}")
print(f"/metrics: breached counter reached {n} at +{w['reached_at_s']} s after due (100 ms polls, "
      f"first non-zero at +{w['first_nonzero_at_s']} s)")
if "timelines" in s:
    t = s["timelines"]
    print(f"audit actions per booking in {t['sampled']} sampled timelines ({{occurrences: bookings}}): "
          + ", ".join(f"{k} {v}" for k, v in sorted(t["actions"].items())))
print(f"sla_breach exceptions per booking: {s['sla_breach_exceptions_per_booking']}; "
      f"problems: {s['problems']} {s['problem_samples']}"
      + (f"; {s['problem_count_mismatch']}" if 'problem_count_mismatch' in s else ""))
PY
echo "server over the burst: $burst_delta"
echo "CPU used outside the server from T to the last breach: $others (loadgen idle; other sessions' builds/tests show here)"
echo "server $hist"
echo "counters at end: timers_armed_total $armed; fulfilment at_risk $risk, breached $breached"
echo "peak RSS (VmHWM): $(mb "$hwm_setup") MB after setup, $(mb "$hwm_burst") MB after the burst (RSS then $(mb "$rss_burst") MB, at end $(mb "$rss_end") MB)"
echo "load average at end: $load"
echo "server stderr: $errlines ERROR/panic lines"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
true
