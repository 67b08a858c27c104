#!/usr/bin/env bash
# benches/audit/cost.sh: what the audit chain costs in durable transitions/s.
#
# Runs the shared lifecycle workload (benches/http/run.sh: create -> accept -> started ->
# completed, 4 durable transitions per booking, fresh temp store and fixture each run) at one
# concurrency level with the chain on ([engine] audit = true, the default) and off
# ([engine] audit = false, the benchmark-only switch), alternating on/off/off/on/... so drift on a
# shared machine cancels, and prints the medians and the cost in %.
#
# Usage: benches/audit/cost.sh
#   env  C (64), SECS (20) per run, ROUNDS (2: on,off,off,on), BUILD (1), KEEP_LOGS (1),
#        and those of benches/http/lib.sh (LISTEN, BENCH_SHARED, BENCH_WORK, BENCH_TMP, ...)
# Target: cost < 15 % at c = 64.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# a port of its own, so another bench on the default 8090 cannot collide with it
export LISTEN=${LISTEN:-127.0.0.1:8094}
C=${C:-64}
SECS=${SECS:-20}
ROUNDS=${ROUNDS:-2}
WORK=${BENCH_WORK:-$HOME/.cache/dxstack-bench}
STAMP=$(date +%Y%m%d-%H%M%S)
RES=$WORK/results/audit-cost-$STAMP
mkdir -p "$RES"

# One binary for every run: build once, then copy it so a concurrent `cargo build` cannot swap
# it between the on and off runs.
if [ "${BUILD:-1}" = 1 ]; then
  (cd "$REPO" && cargo build --release -p dxstack)
fi
BIN=$RES/dxstack
cp "${DXSTACK_BIN:-$REPO/target/release/dxstack}" "$BIN"
echo "binary: $BIN (from $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src store workflows || echo '+dirty'))"
echo "results: $RES   load before: $(cut -d' ' -f1-3 /proc/loadavg)"

run() { # run MODE INDEX
  local mode=$1 i=$2 audit=true
  [ "$mode" = off ] && audit=false
  echo "=== run $i: audit $mode (c=$C, ${SECS}s), load $(cut -d' ' -f1-3 /proc/loadavg) ==="
  BUILD=0 DXSTACK_BIN=$BIN LEVELS=$C SECS=$SECS LABEL="audit-$mode" \
    OUT="$RES/$mode.jsonl" EXTRA_CONFIG=$'[engine]\naudit = '"$audit" \
    "$REPO/benches/http/run.sh" 2>&1 | tee "$RES/run-$i-$mode.log" | grep -E '^audit-|^server c=|ERROR|WARNING' | awk '!seen[$0]++' || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "run $i ($mode) failed: see $RES/run-$i-$mode.log"; exit 1; }
}

i=0
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
  for mode in $order; do i=$((i + 1)); run "$mode" "$i"; done
done

python3 - "$RES/on.jsonl" "$RES/off.jsonl" <<'PY'
import json, statistics, sys
def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]
on, off = load(sys.argv[1]), load(sys.argv[2])
def med(rs, k):
    return statistics.median(r[k] for r in rs)
for name, rs in (("on", on), ("off", off)):
    print(f"audit {name:<3}: transitions/s " + ", ".join(f"{r['steps_per_s']:.1f}" for r in rs)
          + f" (median {med(rs, 'steps_per_s'):.1f}); all-steps p99 ms "
          + ", ".join(f"{r['all_p99_ms']:.2f}" for r in rs) + f"; errors {sum(r['errors'] for r in rs)}")
print("per round (adjacent on/off runs): " + ", ".join(
    f"{100 * (b['steps_per_s'] - a['steps_per_s']) / b['steps_per_s']:.1f} %" for a, b in zip(on, off)))
t_on, t_off = med(on, "steps_per_s"), med(off, "steps_per_s")
cost = 100 * (t_off - t_on) / t_off
print(f"audit chain cost at c={on[0]['c']}: {cost:.1f} % of transitions/s "
      f"(median on {t_on:.1f}/s vs off {t_off:.1f}/s); p99 {med(on, 'all_p99_ms'):.2f} vs {med(off, 'all_p99_ms'):.2f} ms"
      f"  -> target < 15 %: {'met' if cost < 15 else 'NOT met'}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
