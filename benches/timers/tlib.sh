# shellcheck shell=bash
# Shared helpers of the SLA-timer benches (sourced by lateness.sh and drain.sh; not run alone).
# Builds on ../http/lib.sh (server start/stop, fixture, RSS helpers; see its header for the env).
#
# Differences from the HTTP benches:
#   LISTEN defaults to 127.0.0.1:8093 (so a timer bench can run next to benches/http on 8090)
#   the generated config adds  [sla] reroute_on_acceptance_breach = false  (a breach only marks the
#   SLA and opens a case; no re-routing) and  [engine] timer_chunk_max = $CHUNK  (default 256)

TIMERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LISTEN=${LISTEN:-127.0.0.1:8093}
CHUNK=${CHUNK:-256}
EXTRA_CONFIG="[sla]
reroute_on_acceptance_breach = false
[engine]
timer_chunk_max = $CHUNK
${EXTRA_CONFIG:-}"
# shellcheck source=../http/lib.sh
source "$TIMERS_DIR/../http/lib.sh"
TPY="python3 $TIMERS_DIR/timers.py"

# t_provider_sla ACCEPT_WITHIN FULFIL_GRACE: re-PUT p-bench (the provider of dx_fixture) with
# these SLA terms; everything else as in dx_fixture (capacity 10M a day).
t_provider_sla() {
  api PUT /v1/admin/providers/p-bench "$ADMIN_TOKEN" '{"name":"Bench Lab","kind":"lab","network_tier":"standard",
    "location":{"lat":12.97,"lon":77.59,"pincode":"560001"},"serviceable_pincodes":["560001"],"radius_km":50,
    "services":{"CBC":{"rate_paise":50000}},"daily_capacity":10000000,
    "sla":{"accept_within":"'"$1"'","fulfil_grace":"'"$2"'"},"quality_score":1.0,"active":true}' >/dev/null
  log "provider p-bench: sla accept_within $1, fulfil_grace $2"
}

# t_metric 'name{labels}': current value of one series on /metrics (0 if absent).
t_metric() {
  curl -s -m 10 "$BASE/metrics" | python3 -c '
import sys, re
want_name, _, want_labels = sys.argv[1].partition("{")
want = set(re.findall(r"(\w+)=\"([^\"]*)\"", want_labels))
v = 0.0
for line in sys.stdin:
    if line.startswith("#") or not line.strip():
        continue
    series, _, val = line.rstrip().rpartition(" ")
    name, _, labels = series.partition("{")
    if name == want_name and set(re.findall(r"(\w+)=\"([^\"]*)\"", labels)) == want:
        v = float(val)
print(f"{v:.0f}" if v == int(v) else v)' "$1"
}

# t_metrics_grep REGEX: the matching lines of /metrics
t_metrics_grep() { curl -s -m 10 "$BASE/metrics" | grep -E "$1" || true; }

# t_hist_delta BEFORE_FILE AFTER_FILE NAME: count, mean and bucket-interpolated p50/p99 of the
# observations of histogram NAME between two /metrics dumps.
t_hist_delta() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, re
def load(p, name):
    b, s, c = {}, 0.0, 0.0
    for l in open(p):
        if l.startswith(name + "_bucket"):
            le = re.search(r'le="([^"]+)"', l).group(1)
            b[float("inf") if le == "+Inf" else float(le)] = float(l.split()[-1])
        elif l.startswith(name + "_sum"):
            s = float(l.split()[-1])
        elif l.startswith(name + "_count"):
            c = float(l.split()[-1])
    return b, s, c
(b0, s0, c0), (b1, s1, c1) = load(sys.argv[1], sys.argv[3]), load(sys.argv[2], sys.argv[3])
n = c1 - c0
if n <= 0:
    print(f"{sys.argv[3]}: no observations"); sys.exit()
les = sorted(b1)
cum = [(le, b1[le] - b0.get(le, 0)) for le in les]
def q(p):
    target, prev_le, prev_c = p * n, 0.0, 0.0
    for le, c in cum:
        if c >= target:
            if le == float("inf"):
                return f">{prev_le}"
            frac = (target - prev_c) / (c - prev_c) if c > prev_c else 1
            return f"{prev_le + frac * (le - prev_le):.3f}"
        prev_le, prev_c = le, c
    return "?"
print(f"{sys.argv[3]}: {n:.0f} observations, mean {(s1 - s0) / n:.3f} s, p50 ~{q(0.5)} s, p99 ~{q(0.99)} s (interpolated between the histogram's buckets)")
PY
}

# t_busy: busy CPU seconds of the whole machine so far (user+nice+system+irq+softirq+steal of
# /proc/stat), to tell how much CPU other processes took during a measurement window.
t_busy() { awk '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8+$9)/100}' /proc/stat; }
# t_others BUSY0 BUSY1 SRV0 SRV1 WALL_S: "X s = Y% of N cores" of CPU outside the server process
t_others() {
  python3 -c "import os; o=($2-$1)-($4-$3); w=max($5,1e-3); n=os.cpu_count(); print(f'{o:.1f} CPU s = {100*o/w/n:.0f}% of {n} cores')"
}

# t_start DIR: dx_start, but refuse a port that something already answers on, and check that
# the server that answers is ours (dx_start alone takes any 200 from /readyz on $LISTEN as ready,
# so a foreign server on the port would silently become the system under test).
t_start() {
  if curl -s -m 1 -o /dev/null "$BASE/readyz" 2>/dev/null; then
    die "something already answers on $BASE (another bench or test holds $LISTEN): set LISTEN=127.0.0.1:<free port>"
  fi
  dx_start "$1"
  sleep 0.2
  if ! kill -0 "$DX_PID" 2>/dev/null || ! grep -q 'dxstack listening on' "$1/server.out"; then
    tail -n 5 "$1/server.err" >&2
    die "our server (pid $DX_PID) is not the one answering on $BASE"
  fi
}
