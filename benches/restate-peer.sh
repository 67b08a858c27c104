#!/usr/bin/env bash
# Wrapper around the shared Restate peer script ($SHARED/restate/peer.sh) that also really stops it.
#
# Why: shared/bench/restate/peer.sh records `$!` of `(cd "$WORK" && "$BIN" ... &)`, which is the
# PID of an intermediate bash subshell, not of restate-server / node booking.js. `peer.sh stop`
# kills that subshell and the two real servers are left running (re-parented to init), holding
# ports 8080/9070/9080. This wrapper remembers the children of the recorded PIDs, calls
# `peer.sh stop`, then stops exactly those children (SIGTERM, then SIGKILL after 10 s).
#
# Usage: benches/restate-peer.sh start|stop
#   env  BENCH_SHARED  folder of the shared bench harness (default: <repo>/../shared/bench)
#        BENCH_WORK    as in peer.sh (default ~/.cache/dxstack-bench)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${BENCH_SHARED:-$REPO/../shared/bench}
PEER=$SHARED/restate/peer.sh
DATA=${BENCH_WORK:-$HOME/.cache/dxstack-bench}/restate/data
case "${1:-}" in
start) exec "$PEER" start ;;
stop)
  kids=()
  for f in "$DATA/service.pid" "$DATA/server.pid"; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    kids+=("$p")
    while read -r k; do [ -n "$k" ] && kids+=("$k"); done < <(pgrep -P "$p" || true)
  done
  "$PEER" stop || true
  for p in "${kids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${kids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && { kill -9 "$p" 2>/dev/null || true; }
  done
  echo "restate peer stopped (pids: ${kids[*]:-none})"
  ;;
*) echo "usage: $0 start|stop"; exit 2 ;;
esac
