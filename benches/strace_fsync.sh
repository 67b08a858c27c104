#!/usr/bin/env bash
# benches/strace_fsync.sh: how many fsync-class syscalls the server makes per durable write.
#
# Runs the release server under
#   strace -f -C -tt -y --seccomp-bpf -e trace=fsync,fdatasync,sync_file_range -o FILE
# (-C = the -c summary table *and* the individual calls, so the calls can be split by phase;
# -y shows which file each call syncs), then, through the HTTP API:
#   fixture  the admin/partner fixture of benches/http/run.sh + one preflight booking lifecycle
#   idle     IDLE seconds (5) with no requests: background syncs, if any
#   c1       N1 (500) booking creations one at a time (loadgen create-steps.toml, c=1):
#            every create is its own commit, expect ~1 fdatasync per create
#   c64      N2 (2000) creations at concurrency 64: group commit, expect far fewer
#            fdatasyncs than creates (one per batch)
# and prints, per phase, the number of calls and calls per create, which files were synced,
# fsync/commit counters from /metrics (if the server exports any), and strace's -c table.
# Figures in this run are slowed down by strace; use them for counts, not for speed.
#
# Usage: benches/strace_fsync.sh
#   env  N1 (500), N2 (2000), IDLE (5), and those of http/lib.sh (LISTEN, BUILD, KEEP, ...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=http/lib.sh
source "$HERE/http/lib.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM
N1=${N1:-500}; N2=${N2:-2000}; IDLE=${IDLE:-5}

if ! command -v strace >/dev/null; then
  log "installing strace"
  (apt-get update -qq && apt-get install -y -qq strace) >/dev/null || die "could not install strace"
fi

dx_build
dx_build_loadgen
dx_tmp
dx_config "$DX_TMP"
ST=$DX_TMP/strace.txt
dx_start "$DX_TMP" strace -f -C -tt -y --seccomp-bpf -e trace=fsync,fdatasync,sync_file_range -o "$ST" --

marks=$DX_TMP/marks.txt; : >"$marks"
metrics() { curl -s -m 10 "$BASE/metrics" | grep -v -e '^#' -e '_bucket' || true; }
mark() { echo "$1 $(date +%s.%N)" >>"$marks"; metrics >"$DX_TMP/metrics-$1.txt"; }
creates() { # creates N C RUNID
  local line
  line=$("$LG" --config "$HERE/http/create-steps.toml" --base-url "$BASE" --c "$2" --n "$1" \
           --max-seconds 3600 --threads 1 --label "strace-c$2" --run-id "$3-$(date +%s)" --quiet)
  python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); s = r["steps"][0]
print(f"  c={r['c']}: {r['bookings_done']} creates in {r['elapsed_s']:.1f}s ({r['bookings_per_s']:.0f}/s under strace), "
      f"p50 {s['p50_ms']:.2f} ms p99 {s['p99_ms']:.2f} ms, errors {r['errors']}")
for e in r["error_samples"]:
    print("  error sample:", e)
PY
}

mark start
dx_fixture
dx_preflight
mark fixture
sleep "$IDLE"
mark idle
log "phase c1: $N1 creates at c=1"
creates "$N1" 1 c1
mark c1
log "phase c64: $N2 creates at c=64"
creates "$N2" 64 c64
mark c64
dx_stop   # SIGTERM the server; strace writes its -c table when the server exits

echo "=== strace_fsync summary (strace -f -C -tt -y -e trace=fsync,fdatasync,sync_file_range) ==="
python3 - "$ST" "$marks" "$DX_TMP" "$N1" "$N2" <<'PY'
import re, sys, datetime, collections, os
st, marks, tmp, n1, n2 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ph = [(l.split()[0], float(l.split()[1])) for l in open(marks) if l.strip()]
day = datetime.datetime.fromtimestamp(ph[0][1]).date()
call = re.compile(r"^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(fsync|fdatasync|sync_file_range)\((\d+)(<[^>]*>)?")
calls, table, in_table = [], [], False
for line in open(st):
    if line.startswith("% time") or in_table:
        in_table = True; table.append(line.rstrip()); continue
    m = call.match(line)
    if m:
        t = datetime.datetime.combine(day, datetime.time.fromisoformat(m.group(2))).timestamp()
        calls.append((t, m.group(3), (m.group(5) or "").strip("<>") or f"fd {m.group(4)}"))

def metrics(name):
    out = {}
    p = os.path.join(tmp, f"metrics-{name}.txt")
    if os.path.exists(p):
        for l in open(p):
            k, _, v = l.rstrip().rpartition(" ")
            try: out[k] = float(v)
            except ValueError: pass
    return out
def delta(n0, n1, key):
    a, b = metrics(n0), metrics(n1)
    return (b[key] - a.get(key, 0.0)) if key in b else None

creates = {"c1": n1, "c64": n2}
GC = "dxstack_batch_commands_count"
print(f"{'phase':<8} {'secs':>6} {'creates':>7} {'commits':>7} {'fdatasync':>9} {'fsync':>5} {'sfr':>5}  fdatasync/commit  fdatasync/create  commands/commit")
for (n0, t0), (n1_, t1) in zip(ph, ph[1:]):
    c = collections.Counter(k for t, k, _ in calls if t0 <= t < t1)
    gc = delta(n0, n1_, GC)
    cr = creates.get(n1_)
    cmds = delta(n0, n1_, "dxstack_batch_commands_sum")
    f = lambda x: f"{x:.3f}" if x is not None else "-"
    print(f"{n1_:<8} {t1-t0:6.1f} {cr if cr else '-':>7} {int(gc) if gc is not None else '-':>7} {c['fdatasync']:9d} {c['fsync']:5d} {c['sync_file_range']:5d}"
          f"  {f(c['fdatasync']/gc if gc else None):>16}  {f(c['fdatasync']/cr if cr else None):>16}  {f(cmds/gc if gc and cmds is not None else None):>15}")
tail = collections.Counter(k for t, k, _ in calls if t >= ph[-1][1])
print(f"{'shutdown':<8} {'':>6} {'':>7} {'':>7} {tail['fdatasync']:9d} {tail['fsync']:5d} {tail['sync_file_range']:5d}")
print("files synced (all phases):")
files = collections.Counter((k, os.path.relpath(f, tmp) if f.startswith(tmp) else f) for _, k, f in calls)
for (k, f), n in files.most_common(10):
    print(f"  {n:7d}  {k:<15} {f}")
print("/metrics deltas per phase (_count/_sum/_total of commit-related series):")
for (n0, _), (n1_, _) in zip(ph, ph[1:]):
    m1 = metrics(n1_)
    for k in sorted(m1):
        if re.search(r"batch|commit|fdatasync|fsync|flush|commands_total", k) and re.search(r"_count|_sum|_total", k):
            d = delta(n0, n1_, k)
            if d:
                print(f"  {n1_:<8} {k:<72} +{d:g}")
print("strace -c table (whole run, incl. start-up, fixture and shutdown):")
print("\n".join("  " + l for l in table) if table else "  (none: did strace exit cleanly?)")
PY
