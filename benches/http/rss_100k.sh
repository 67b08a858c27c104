#!/usr/bin/env bash
# benches/http/rss_100k.sh: server memory with a store of 100,000 bookings.
#
#   1. build (BUILD=0 skips), fresh store, server on $LISTEN, the fixture of run.sh
#   2. fill: loadgen with create-steps.toml (POST /v1/bookings only, 201 expected) at
#      concurrency $C (64) until $FILL (100000) bookings exist; RSS sampled every 5 s
#   3. peak RSS (VmHWM) during the fill; SIGTERM
#   4. restart on the same store: time to ready, idle RSS
#   5. reads.py: page through every booking (GET /v1/bookings?limit=200), $GETS (300) random
#      GET /v1/bookings/{id}, one GET /v1/members/m-bench/entitlements; peak RSS after restart
#
# Usage: benches/http/rss_100k.sh
#   env  FILL (100000), C (64), GETS (300), and those of lib.sh (LISTEN, BUILD, KEEP, ...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
SAMPLER=""
cleanup() { local rc=$?; [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true; (exit $rc); dx_cleanup; }
trap cleanup EXIT
trap 'exit 130' INT TERM

FILL=${FILL:-100000}; C=${C:-64}; GETS=${GETS:-300}

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
dx_start "$DX_TMP"
dx_fixture
dx_preflight   # 1 booking
read -r hwm0 rss0 < <(dx_mem "$DX_PID")
log "RSS with fixture only: $(mb "$rss0") MB (peak $(mb "$hwm0") MB)"

( t0=$(date +%s); while kill -0 "$DX_PID" 2>/dev/null; do
    echo "$(( $(date +%s) - t0 )) $(dx_mem "$DX_PID")"; sleep 5; done ) >"$DX_TMP/rss.log" 2>/dev/null &
SAMPLER=$!

created=1; attempt=0; fill_s=0; fill_errors=0
while [ "$created" -lt "$FILL" ] && [ $attempt -lt 3 ]; do
  attempt=$((attempt + 1)); want=$((FILL - created))
  log "fill attempt $attempt: $want creates at c=$C"
  t0=$(date +%s.%N)
  line=$("$LG" --config "$HERE/create-steps.toml" --base-url "$BASE" --c "$C" --n "$want" \
           --max-seconds 7200 --threads 1 --label fill --run-id "fill$attempt-$(date +%s)" --quiet)
  echo "$line" >"$DX_TMP/fill-$attempt.json"
  fill_s=$(python3 -c "print($fill_s + $(date +%s.%N) - $t0)")
  done_n=$(jget bookings_done <<<"$line"); errs=$(jget errors <<<"$line")
  created=$((created + done_n)); fill_errors=$((fill_errors + errs))
  python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); s = r["steps"][0]
print(f"fill: {r['bookings_done']} created in {r['elapsed_s']:.1f}s = {r['bookings_per_s']:.0f}/s, "
      f"create p50 {s['p50_ms']:.2f} ms p99 {s['p99_ms']:.2f} ms max {s['max_ms']:.1f} ms, errors {r['errors']}")
for e in r["error_samples"]:
    print("  error sample:", e)
PY
  kill -0 "$DX_PID" 2>/dev/null || { tail -n 40 "$DX_TMP/server.err"; die "server died during the fill"; }
done
read -r hwm_fill rss_fill < <(dx_mem "$DX_PID")
kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""
store_kb=$(du -sk "$DX_TMP/data" | cut -f1)
log "after fill: $created bookings; RSS $(mb "$rss_fill") MB, peak $(mb "$hwm_fill") MB; store $(mb "$store_kb") MB"
dx_stop

dx_start "$DX_TMP"
ready_s=$DX_READY_S
sleep 2
read -r hwm_idle rss_idle < <(dx_mem "$DX_PID")
log "restarted: ready in ${ready_s}s; idle RSS $(mb "$rss_idle") MB (peak $(mb "$hwm_idle") MB)"
reads=$(python3 "$HERE/reads.py" "$BASE" "$GETS")
read -r hwm_read rss_read < <(dx_mem "$DX_PID")
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
dx_stop

echo "=== rss_100k summary ==="
echo "RSS samples during the fill (every 5 s, at most ~12 shown):"
k=$(( ($(wc -l <"$DX_TMP/rss.log") + 11) / 12 )); [ "$k" -ge 1 ] || k=1
awk -v k="$k" '(NR-1)%k==0' "$DX_TMP/rss.log" | awk '{printf "  t=%4ss  rss=%7.1f MB  peak=%7.1f MB\n", $1, $3/1024, $2/1024}'
echo "fill: $created bookings (target $FILL) in $(printf %.1f "$fill_s") s at c=$C, $fill_errors errors"
echo "peak RSS during fill (VmHWM): $(mb "$hwm_fill") MB   (RSS at end of fill $(mb "$rss_fill") MB; fixture only $(mb "$rss0") MB)"
echo "store on disk after fill: $(mb "$store_kb") MB"
echo "restart: ready in ${ready_s} s; idle RSS $(mb "$rss_idle") MB"
echo "reads after restart: $reads"
echo "peak RSS after restart + reads (VmHWM): $(mb "$hwm_read") MB   (RSS now $(mb "$rss_read") MB)"
echo "server stderr: $errlines ERROR/panic lines"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
true
