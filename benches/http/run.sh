#!/usr/bin/env bash
# benches/http/run.sh: DxStack booking-lifecycle throughput/latency over the v1 HTTP API,
# with the shared loadgen + compare.sh (the same harness as the Restate peer).
#
#   1. cargo build --release -p dxstack                      (BUILD=0 skips)
#   2. target/release/dxstack serve on a fresh temp store, listen $LISTEN (127.0.0.1:8090),
#      demo off, admin token set, per-key rate limit lifted
#   3. fixture through the admin/partner API (curl): partner pt-bench + key, catalog CBC,
#      provider p-bench (560001, CBC, capacity 10M, sla 1h/2h) + key, policy pol-bench
#      (2024-01-01..2035-12-31, lab benefit with limits that never bite, copay 0), member m-bench;
#      then one preflight booking through the whole lifecycle with curl
#   4. $SHARED/compare.sh $BASE $SHARED/dxstack-steps.toml dxstack, one level at a time
#      (create -> accept -> started -> completed = 4 durable transitions per booking)
#   5. server CPU and peak RSS (VmHWM) after each level and at the end
#   6. SIGTERM, check the exit code
#
# Usage: benches/http/run.sh
#   env  SECS (40), LEVELS ("1 16 64"), N, THREADS, REF=<restate jsonl> (prints ratios),
#        OUT=<jsonl> (default ~/.cache/dxstack-bench/results/dxstack.jsonl), LABEL (dxstack),
#        and those of lib.sh: LISTEN, BUILD, BENCH_SHARED, BENCH_WORK, BENCH_TMP, KEEP, RUST_LOG
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM

LEVELS=${LEVELS:-"1 16 64"}
LABEL=${LABEL:-dxstack}
export SECS=${SECS:-40}
[ -n "${REF:-}" ] && { [ -f "$REF" ] || die "REF=$REF not found"; export REF; }

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
dx_start "$DX_TMP"
dx_fixture
dx_preflight

log "compare.sh $BASE $SHARED/dxstack-steps.toml $LABEL  (SECS=$SECS LEVELS=\"$LEVELS\"${REF:+ REF=$REF})"
summary=()
for c in $LEVELS; do
  cpu0=$(dx_cpu "$DX_PID"); t0=$(date +%s.%N); dx_snapshot "$DX_PID" "$DX_TMP/snap0"
  LEVELS=$c "$SHARED/compare.sh" "$BASE" "$SHARED/dxstack-steps.toml" "$LABEL"
  cpu1=$(dx_cpu "$DX_PID"); t1=$(date +%s.%N); dx_snapshot "$DX_PID" "$DX_TMP/snap1"
  read -r hwm rss < <(dx_mem "$DX_PID")
  line=$(python3 -c "c0,c1,t0,t1=$cpu0,$cpu1,$t0,$t1; print(f'server c=$c: cpu {c1-c0:.1f}s over {t1-t0:.1f}s wall = {100*(c1-c0)/(t1-t0):.0f}% of one core; RSS now $(mb "$rss") MB, peak $(mb "$hwm") MB')")
  echo "$line"; summary+=("$line")
  line="server c=$c: $(dx_snapshot_delta "$DX_TMP/snap0" "$DX_TMP/snap1")"
  echo "$line"; summary+=("$line")
  if ! kill -0 "$DX_PID" 2>/dev/null; then
    echo "--- server stderr (tail) ---"; tail -n 40 "$DX_TMP/server.err"; die "server died during c=$c"
  fi
done

echo "=== dxstack summary ==="
printf '%s\n' "${summary[@]}"
dx_report_end
