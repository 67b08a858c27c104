#!/usr/bin/env bash
# benches/eligibility/dry_run.sh: throughput and latency of POST /v1/eligibility (admission dry
# run: reads the member, the policy, the ledger usage and routes over the providers; reserves
# nothing) over the v1 HTTP API, with the shared loadgen.
#
#   1. cargo build --release -p dxstack                      (BUILD=0 skips)
#   2. target/release/dxstack serve on a fresh temp store, listen $LISTEN (127.0.0.1:8095),
#      demo off, admin token set, per-key rate limit lifted (../http/lib.sh: dx_config)
#   3. fixture (fixture.sh: el_fixture): partner pt-bench + key, catalog CBC, 4 providers on
#      560001 (3 in the policy's network), policy pol-bench with a lab benefit (copay 20 %,
#      12 a year, 50,000 INR a year, 2,000 INR per visit), member m-bench; then one preflight
#      check with curl (must be 200, eligible, priced, routed)
#   4. per level: loadgen with eligibility-steps.toml (one step, expect_status 200) at
#      concurrency c for $SECS s; checks/s, p50/p90/p99/max, errors; server CPU, RSS; the
#      machine's load average and the CPU used by everything else during the level
#   5. one check with curl after the load (same answer as the preflight: nothing was reserved)
#   6. SIGTERM, check the exit code
#
# Usage: benches/eligibility/dry_run.sh
#   env  SECS (15), LEVELS ("16 1"), THREADS (loadgen threads, 1), OUT=<jsonl>
#        (default ~/.cache/dxstack-bench/results/eligibility.jsonl), and those of ../http/lib.sh:
#        LISTEN, BUILD, BENCH_SHARED, BENCH_WORK, BENCH_TMP, KEEP, RUST_LOG, EXTRA_CONFIG
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fixture.sh
source "$HERE/fixture.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM

SECS=${SECS:-15}; LEVELS=${LEVELS:-"16 1"}; THREADS=${THREADS:-1}
OUT=${OUT:-$WORK/results/eligibility.jsonl}
mkdir -p "$(dirname "$OUT")"

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
dx_start "$DX_TMP"
el_fixture
el_preflight
before=$(api POST /v1/eligibility "$DX_PARTNER_KEY" "$ELIG_BODY")
export DX_PARTNER_KEY

summary=()
for c in $LEVELS; do
  la0=$(loadavg)
  cpu0=$(dx_cpu "$DX_PID"); busy0=$(cpu_busy); t0=$(date +%s.%N)
  log "level c=$c: loadgen $SECS s, $THREADS thread(s); load average before: $la0"
  line=$("$LG" --config "$HERE/eligibility-steps.toml" --base-url "$BASE" --c "$c" \
           --max-seconds "$SECS" --threads "$THREADS" --label "eligibility-c$c" \
           --run-id "elig-c$c-$(date +%s)" --json-out "$OUT" --quiet)
  cpu1=$(dx_cpu "$DX_PID"); busy1=$(cpu_busy); t1=$(date +%s.%N)
  la1=$(loadavg)
  read -r hwm rss < <(dx_mem "$DX_PID")
  res=$(python3 - "$line" "$c" "$cpu0" "$cpu1" "$busy0" "$busy1" "$t0" "$t1" "$la0" "$la1" "$(mb "$rss")" "$(mb "$hwm")" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); c = sys.argv[2]
cpu0, cpu1, b0, b1, t0, t1 = map(float, sys.argv[3:9])
la0, la1, rss, hwm = sys.argv[9:13]
s = r["steps"][0]; wall = t1 - t0
srv = cpu1 - cpu0
lg = r["loadgen_cpu_user_s"] + r["loadgen_cpu_sys_s"]
other = (b1 - b0) / 100 - srv - lg          # CLK_TCK = 100
print(f"c={c}: {r['steps_per_s']:,.0f} checks/s ({s['ok']:,} ok in {r['elapsed_s']:.1f} s, errors {r['errors']}), "
      f"p50 {s['p50_ms']:.3f} ms, p90 {s['p90_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms, max {s['max_ms']:.1f} ms; "
      f"CPU (% of one core): server {100*srv/wall:.0f}%, loadgen {100*lg/wall:.0f}%, everything else {100*other/wall:.0f}%; "
      f"server RSS {rss} MB (peak {hwm} MB); loadavg before {la0}, after {la1}")
for e in r["error_samples"]:
    print("  error sample:", e)
PY
)
  echo "$res"; summary+=("$res")
  if ! kill -0 "$DX_PID" 2>/dev/null; then
    echo "--- server stderr (tail) ---"; tail -n 40 "$DX_TMP/server.err"; die "server died during c=$c"
  fi
done

after=$(api POST /v1/eligibility "$DX_PARTNER_KEY" "$ELIG_BODY")
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
echo "=== eligibility dry run summary ($(date +%F), $(nproc) cores, loadgen $THREADS thread(s), $SECS s per level) ==="
printf '%s\n' "${summary[@]}"
if [ "$before" = "$after" ]; then echo "answer unchanged by the load (nothing reserved): $after"
else echo "WARNING: the answer changed under the load:"; echo "  before: $before"; echo "  after:  $after"; fi
echo "server stderr: $errlines ERROR/panic lines"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
dx_stop
[ "${DX_STOP_RC:-0}" = 0 ] || echo "WARNING: server exit code after SIGTERM was $DX_STOP_RC (contract: 0)"
echo "results appended to $OUT"
