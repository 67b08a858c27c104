#!/usr/bin/env bash
# benches/audit/verify_speed.sh: offline verification speed of a large audit chain.
#
#   1. release server on a fresh temp store with the standard bench fixture (benches/http/lib.sh)
#   2. fill: FILL bookings through their whole lifecycle with the shared loadgen
#      (create -> accept -> started -> completed: 4 audit entries each), c = C
#   3. GET /v1/ops/audit/verify (timed) and GET /v1/ops/audit/export > export.jsonl (timed)
#   4. SIGTERM, then RUNS timed runs each of
#        dxstack audit verify --store DIR     and     dxstack audit verify --file export.jsonl
#      (page cache warm: the first run of each is a warm-up and is reported separately); wall
#      and CPU (user + sys) seconds of each run, entries/s of both: on a shared machine the CPU
#      figure is the one that does not depend on what else runs
#   5. optionally (PY=1) the independent Python verifier over the same export
#
# Usage: benches/audit/verify_speed.sh
#   env  FILL (130000 bookings = ~520,000 entries), C (64), RUNS (3), PY (1),
#        REUSE=<dir kept by an earlier run with KEEP=1> (skip fixture and fill),
#        and those of benches/http/lib.sh (LISTEN, BUILD, BENCH_TMP, KEEP, ...)
# Target: >= 200,000 entries/s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LISTEN=${LISTEN:-127.0.0.1:8095} # a port of its own (other benches use 8090)
# shellcheck source-path=SCRIPTDIR source=../http/lib.sh
source "$HERE/../http/lib.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM

FILL=${FILL:-130000}
C=${C:-64}
RUNS=${RUNS:-3}
PY=${PY:-1}

dx_build
dx_build_loadgen
if [ -n "${REUSE:-}" ]; then
  # a store kept by an earlier run (KEEP=1): no fixture, no fill
  [ -d "$REUSE/data" ] || die "REUSE=$REUSE has no data/ directory"
  DX_TMP=$REUSE; export KEEP=1
  dx_config "$DX_TMP"
  dx_start "$DX_TMP"
  log "reusing the store in $REUSE (no fill)"
else
  dx_tmp
  dx_config "$DX_TMP"
  dx_start "$DX_TMP"
  dx_fixture
  dx_preflight
  log "fill: $FILL bookings at c=$C with loadgen ($SHARED/dxstack-steps.toml)"
  t0=$(date +%s.%N)
  line=$("$LG" --config "$SHARED/dxstack-steps.toml" --base-url "$BASE" --c "$C" --n "$FILL" \
    --max-seconds 3600 --threads 1 --label audit-fill --run-id "audit-fill-$(date +%s)" --quiet)
  t1=$(date +%s.%N)
  python3 - "$line" "$t0" "$t1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"fill: {r['bookings_done']} bookings in {wall:.1f} s, {r['steps_per_s']:.0f} transitions/s, errors {r['errors']}")
PY
fi

secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }

t0=$(date +%s.%N)
curl -sS -f -m 1800 -o "$DX_TMP/api-verify.json" -H "authorization: Bearer $ADMIN_TOKEN" "$BASE/v1/ops/audit/verify"
t1=$(date +%s.%N)
[ "$(jget ok <"$DX_TMP/api-verify.json")" = true ] || die "API verify: $(cat "$DX_TMP/api-verify.json")"
api_n=$(jget entries <"$DX_TMP/api-verify.json")
echo "GET /v1/ops/audit/verify: ok, $api_n entries, head $(jget head_hash <"$DX_TMP/api-verify.json"), $(secs "$t0" "$t1") s"

t0=$(date +%s.%N)
curl -sS -f -m 1800 -o "$DX_TMP/export.jsonl" -H "authorization: Bearer $ADMIN_TOKEN" "$BASE/v1/ops/audit/export"
t1=$(date +%s.%N)
lines=$(wc -l <"$DX_TMP/export.jsonl")
echo "GET /v1/ops/audit/export: $lines lines, $(mb $(($(stat -c %s "$DX_TMP/export.jsonl") / 1024))) MB, $(secs "$t0" "$t1") s"
[ "$lines" -ge "$api_n" ] || die "export has $lines lines, fewer than the $api_n entries verify saw"
dx_stop
[ "${DX_STOP_RC:-0}" = 0 ] || echo "WARNING: server exit code after SIGTERM was $DX_STOP_RC"
echo "store on disk: $(mb "$(du -sk "$DX_TMP/data" | cut -f1)") MB"
# The export's own head: what `--file` must report.
FILE_HEAD=$(tail -n 1 "$DX_TMP/export.jsonl" | jget hash)

timed() { # timed LABEL ARGS... : one run of `dxstack audit verify ARGS`; wall and CPU time, entries/s
  python3 - "$BIN" "$@" <<'PY' || die "dxstack audit verify ${*:2} failed"
import re, resource, subprocess, sys, time
binary, label, args = sys.argv[1], sys.argv[2], sys.argv[3:]
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
p = subprocess.run([binary, "audit", "verify", *args], capture_output=True, text=True)
wall = time.monotonic() - t0
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
m = re.match(r"ok (\d+) entries, head ([0-9a-f]{64})", p.stdout)
if p.returncode != 0 or not m:
    sys.exit(f"exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
n = int(m.group(1))
print(f"{label:<18} {n:>9,} entries  wall {wall:6.3f} s = {n / wall:>9,.0f}/s   "
      f"cpu {cpu:6.3f} s = {n / cpu:>9,.0f}/s   max RSS {r1.ru_maxrss / 1024:.0f} MB")
PY
}

for mode in store file; do
  if [ $mode = store ]; then args=(--store "$DX_TMP/data"); else args=(--file "$DX_TMP/export.jsonl"); fi
  timed "--$mode warm-up" "${args[@]}"
  for i in $(seq 1 "$RUNS"); do timed "--$mode run $i" "${args[@]}"; done
done
out=$("$BIN" audit verify --file "$DX_TMP/export.jsonl")
case "$out" in *"head $FILE_HEAD"*) ;; *) die "--file head is not the export's last hash: $out";; esac

if [ "$PY" = 1 ]; then
  t0=$(date +%s.%N)
  out=$(python3 "$REPO/tests/api/ops/verify_chain.py" verify "$DX_TMP/export.jsonl")
  t1=$(date +%s.%N)
  echo "python verify_chain.py: $out" | cut -c1-200
  case "$out" in *"\"head_hash\": \"$FILE_HEAD\""*) ;; *) die "python verifier disagrees";; esac
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'python hashlib verifier {int(sys.argv[3]):>9,} entries  {s:7.3f} s  {int(sys.argv[3])/s:>11,.0f} entries/s')" "$t0" "$t1" "$lines"
fi
