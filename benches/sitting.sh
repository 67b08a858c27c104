#!/usr/bin/env bash
# benches/sitting.sh: the whole comparison in one sitting, back to back (machines are noisy:
# compare ratios from one sitting only).
#   0. cargo build --release -p dxstack (before anything is measured)
#   1. Restate peer: start, compare.sh on restate/steps.toml, stop
#   2. DxStack: http/run.sh with REF=<the Restate results of step 1> (prints the ratios)
#   3. http/rss_100k.sh
#   4. strace_fsync.sh
# Everything is also written to $BENCH_WORK/sitting-<stamp>.log; results JSONL under
# $BENCH_WORK/results/{restate,dxstack}-<stamp>.jsonl.
#
# Usage: benches/sitting.sh          env SECS (20), SKIP="rss strace" to leave parts out
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${BENCH_SHARED:-$REPO/../shared/bench}
WORK=${BENCH_WORK:-$HOME/.cache/dxstack-bench}
export SECS=${SECS:-20}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK/results"
LOG=$WORK/sitting-$STAMP.log
exec > >(tee -a "$LOG") 2>&1
SKIP=${SKIP:-}
peer_up=0
trap 'if [ $peer_up = 1 ]; then "$HERE/restate-peer.sh" stop; fi' EXIT
part() { local name=$1; shift; "$@" || echo "!! $name FAILED (exit code $?)"; }

echo "== sitting $STAMP on $(hostname), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "${BUILD:-1}" = 1 ] && (cd "$REPO" && cargo build --release -p dxstack)

echo "== Restate peer (SECS=$SECS)"
"$HERE/restate-peer.sh" start; peer_up=1
OUT=$WORK/results/restate-$STAMP.jsonl "$SHARED/compare.sh" http://127.0.0.1:8080 "$SHARED/restate/steps.toml" restate
"$HERE/restate-peer.sh" stop; peer_up=0

echo "== DxStack (SECS=$SECS, REF=restate-$STAMP.jsonl); load: $(cut -d' ' -f1-3 /proc/loadavg)"
BUILD=0 REF=$WORK/results/restate-$STAMP.jsonl OUT=$WORK/results/dxstack-$STAMP.jsonl part run.sh "$HERE/http/run.sh"

case " $SKIP " in *" rss "*) ;; *)
  echo "== rss_100k; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  BUILD=0 part rss_100k.sh "$HERE/http/rss_100k.sh" ;; esac
case " $SKIP " in *" strace "*) ;; *)
  echo "== strace_fsync; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  BUILD=0 part strace_fsync.sh "$HERE/strace_fsync.sh" ;; esac
echo "== done; log $LOG"
