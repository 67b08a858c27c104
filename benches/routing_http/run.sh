#!/usr/bin/env bash
# benches/routing_http/run.sh: HTTP booking-creation rate with a large provider network loaded
# (10,000 providers over 20,000 pincodes, the distribution of the criterion bench
# benches/routing.rs), over the v1 API.
#
#   1. cargo build --release -p dxstack                       (BUILD=0 skips)
#   2. gen_network.py: the network, members and booking requests (seeded, deterministic)
#   3. release server on a fresh temp store, listen $LISTEN (127.0.0.1:8097; the script stops if
#      anything already answers there), demo off, per-key rate limit lifted (../http/lib.sh)
#   4. fixture through the API: partner pt-rt + key, the 20 catalog services, policy pol-rt
#      (network tiers gold + silver, lab + consultation benefits whose limits never bite, copay 0),
#      $MEMBERS members (POST /v1/members/import), then the 10,000 providers with
#      PUT /v1/admin/providers/{id} from rtload.py at c=$PUT_C: timed (the "network load")
#   5. client ceiling: rtload.py against GET /readyz at c=$CEIL_C for $CEIL_SECS s
#   6. preflight: one booking with the first routable request
#   7. per level c in $LEVELS: rtload.py create, $WARM s warm-up + $SECS s measured; server CPU,
#      group-commit stats (/metrics), RSS
#   8. summary; SIGTERM, exit code checked
#
# Usage: benches/routing_http/run.sh
#   env  SECS (20), WARM (3), LEVELS ("16 64"), MEMBERS (1000), CAP_SCALE (100: every daily
#        capacity x100 = 500..5,000 a day, so capacity does not run out), DAYS (7), DAY0
#        (2030-01-01, India days; slots 07:00-19:00 on DAY0..DAY0+DAYS-1), SEED (0x0d157a7c),
#        SCALE_DIV (1; 20 = a 20x smaller network for a smoke test), ASKS (100000 requests,
#        cycled), PUT_C (32), CEIL_C (64), CEIL_SECS (3; 0 = skip), OUT (results JSON lines,
#        default ~/.cache/dxstack-bench/results/routing_http.jsonl), PYTHON,
#        and those of ../http/lib.sh: LISTEN, BUILD, BENCH_TMP, KEEP, RUST_LOG, EXTRA_CONFIG, ...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LISTEN=${LISTEN:-127.0.0.1:8097} # a port of its own (8090 http, 8093 timers, 8094/8095 others)
# shellcheck source=../http/lib.sh
source "$HERE/../http/lib.sh"
trap dx_cleanup EXIT
trap 'exit 130' INT TERM

SECS=${SECS:-20}; WARM=${WARM:-3}; LEVELS=${LEVELS:-"16 64"}; MEMBERS=${MEMBERS:-1000}
CAP_SCALE=${CAP_SCALE:-100}; DAYS=${DAYS:-7}; DAY0=${DAY0:-2030-01-01}; SEED=${SEED:-219511420}
SCALE_DIV=${SCALE_DIV:-1}; ASKS=${ASKS:-100000}; PUT_C=${PUT_C:-32}; CEIL_C=${CEIL_C:-64}
CEIL_SECS=${CEIL_SECS:-3}
OUT=${OUT:-$WORK/results/routing_http.jsonl}
# the real interpreter, not a pyenv shim
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
RT="$PY $HERE/rtload.py"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# machine CPU (all cores, jiffies): "busy iowait total"; server bytes written to disk
statcpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
wbytes() { awk '/^write_bytes:/{print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }
mkdir -p "$(dirname "$OUT")"
RUN=$(date -u +%Y%m%d-%H%M%S)

foreign_check() {
  if curl -s -m 1 -o /dev/null "$BASE/readyz" 2>/dev/null; then
    die "something already answers on $BASE (another bench or test holds $LISTEN): set LISTEN=127.0.0.1:<free port>"
  fi
}
foreign_check
log "run $RUN on $(hostname), $(nproc) CPUs; load average $(loadavg); results -> $OUT"
dx_build
log "binary: $BIN ($(stat -c %y "$BIN" | cut -d. -f1)); HEAD $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src store workflows || echo ' + uncommitted changes in src/store/workflows')$([ "${BUILD:-1}" = 1 ] || echo ' (BUILD=0: the tree now, not necessarily what the binary was built from)')"
dx_tmp
NET=$DX_TMP/net

log "generating the network: gen_network.py --seed $SEED --scale-div $SCALE_DIV --cap-scale $CAP_SCALE --asks $ASKS --members $MEMBERS --days $DAYS"
NETSUM=$("$PY" "$HERE/gen_network.py" "$NET" --seed "$SEED" --scale-div "$SCALE_DIV" --cap-scale "$CAP_SCALE" \
  --asks "$ASKS" --members "$MEMBERS" --days "$DAYS")
echo "network: $NETSUM"
nsum() { jget "$1" <<<"$NETSUM"; }

dx_config "$DX_TMP"
foreign_check
dx_start "$DX_TMP"
sleep 0.2
if ! kill -0 "$DX_PID" 2>/dev/null || ! grep -q 'dxstack listening on' "$DX_TMP/server.out"; then
  tail -n 5 "$DX_TMP/server.err" >&2
  die "our server (pid $DX_PID) is not the one answering on $BASE"
fi
read -r _ rss0 < <(dx_mem "$DX_PID")

# ---- fixture
log "fixture: partner pt-rt, catalog (20), policy pol-rt (gold+silver), $MEMBERS members"
t_fix0=$(date +%s.%N)
api PUT /v1/admin/partners/pt-rt "$ADMIN_TOKEN" '{"name":"Routing Bench Partner",
  "branding":{"display_name":"RT","logo_url":"https://rt.example/logo.png","primary_color":"#003366","accent_color":"#ff9900","domain":"rt.example"},
  "sso":{"hs256_secret":"rt-sso-secret-0123456789abcdef0123","allowed_return_origins":["https://rt.example"]}}' >/dev/null
PKEY=$(api POST /v1/admin/partners/pt-rt/keys "$ADMIN_TOKEN" | jget key)
while IFS=$'\t' read -r code body; do
  api PUT "/v1/admin/catalog/$code" "$ADMIN_TOKEN" "$body" >/dev/null
done < <("$PY" -c 'import json,sys
for s in json.load(open(sys.argv[1])):
    print(s["code"] + "\t" + json.dumps({k: s[k] for k in ("name", "category", "report_tat")}))' "$NET/catalog.json")
benefit() { echo '{"category":"'"$1"'","annual_limit_paise":1000000000000000,"annual_count":1000000000,
  "per_visit_cap_paise":1000000000000,"copay_percent":0,"waiting_period_days":0,
  "relationships":["self","spouse","child","parent"],"min_age":0,"max_age":150}'; }
api PUT /v1/policies/pol-rt "$PKEY" '{"valid_from":"2024-01-01","valid_to":"2035-12-31","floater":false,
  "network_tiers":["gold","silver"],"benefits":['"$(benefit lab),$(benefit consultation)"']}' >/dev/null
sed 's/,POLICY_ID,/,pol-rt,/' "$NET/members.csv" >"$NET/members-pol.csv"
imp=$(curl -sS -m 120 -X POST "$BASE/v1/members/import" -H "authorization: Bearer $PKEY" \
  -H 'content-type: text/csv' --data-binary @"$NET/members-pol.csv")
imported=$(jget imported <<<"$imp" 2>/dev/null || echo "?")
[ "$imported" = "$MEMBERS" ] || die "member import: expected $MEMBERS imported, got: $(head -c 600 <<<"$imp")"
log "fixture done in $(python3 -c "import time; print(f'{time.time()-$t_fix0:.2f}')") s (imported $imported members)"

# ---- the network
NPROV=$(nsum providers)
log "loading $NPROV providers: PUT /v1/admin/providers/{id} at c=$PUT_C; load average $(loadavg)"
cpu0=$(dx_cpu "$DX_PID")
PUTSUM=$($RT put --base "$BASE" --token "$ADMIN_TOKEN" --file "$NET/providers.jsonl" \
  --path '/v1/admin/providers/{id}' --c "$PUT_C") || die "provider load failed: $PUTSUM"
cpu1=$(dx_cpu "$DX_PID")
read -r hwm_net rss_net < <(dx_mem "$DX_PID")
store_net=$(du -sk "$DX_TMP/data" | cut -f1)
put_secs=$(jget secs <<<"$PUTSUM"); put_rate=$(jget per_s <<<"$PUTSUM")
put_p99=$(jget latency.p99_ms <<<"$PUTSUM")
NETLINE="network load: $NPROV providers in ${put_secs} s = ${put_rate}/s (c=$PUT_C, PUT p99 ${put_p99} ms), server CPU $(python3 -c "print(f'{$cpu1-$cpu0:.1f}')") s; RSS $(mb "$rss0") -> $(mb "$rss_net") MB (peak $(mb "$hwm_net") MB); store $(mb "$store_net") MB"
log "$NETLINE"
probe=$(nsum probe_pincode); want=$(nsum probe_pincode_providers)
got=$(api GET "/v1/admin/providers?pincode=$probe" "$ADMIN_TOKEN" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$got" = "$want" ] || die "GET /v1/admin/providers?pincode=$probe lists $got providers, the generator put $want there"
log "check: pincode $probe is served by $got providers, as generated"

# ---- client ceiling
CEILLINE="client ceiling: skipped (CEIL_SECS=0)"
if [ "$CEIL_SECS" != 0 ]; then
  CEIL=$($RT ceiling --base "$BASE" --path /readyz --c "$CEIL_C" --secs "$CEIL_SECS")
  CEILLINE="client ceiling: GET /readyz at c=$CEIL_C: $(jget per_s <<<"$CEIL") req/s, p50 $(jget latency.p50_ms <<<"$CEIL") ms, p99 $(jget latency.p99_ms <<<"$CEIL") ms; client $(jget client_cpu_us_per_req <<<"$CEIL") us CPU per request ($(jget client_cpu_pct <<<"$CEIL") % of one core)"
  log "$CEILLINE"
fi

# ---- preflight
$RT preflight --base "$BASE" --key "$PKEY" --net "$NET" --day0 "$DAY0" || die "preflight: no request of the first 20 was booked"

# ---- levels
summary=()
li=0
for c in $LEVELS; do
  dx_snapshot "$DX_PID" "$DX_TMP/snap0"; cpu0=$(dx_cpu "$DX_PID"); t0=$(date +%s.%N); la0=$(loadavg)
  st0=$(statcpu); wb0=$(wbytes "$DX_PID"); sk0=$(du -sk "$DX_TMP/data" | cut -f1)
  log "level c=$c: ${WARM} s warm-up + ${SECS} s; load average before $la0"
  RES=$($RT create --base "$BASE" --key "$PKEY" --net "$NET" --c "$c" --warm "$WARM" --secs "$SECS" \
    --members "$MEMBERS" --offset $((li * 50000)) --run "$RUN-c$c" --day0 "$DAY0" --label "routing_http c=$c" --out "$OUT")
  cpu1=$(dx_cpu "$DX_PID"); t1=$(date +%s.%N); st1=$(statcpu); wb1=$(wbytes "$DX_PID")
  dx_snapshot "$DX_PID" "$DX_TMP/snap1"; la1=$(loadavg)
  read -r hwm rss < <(dx_mem "$DX_PID"); sk1=$(du -sk "$DX_TMP/data" | cut -f1)
  line=$("$PY" - "$RES" "$cpu0" "$cpu1" "$t0" "$t1" "$st0" "$st1" "$wb0" "$wb1" "$(nproc)" "$sk0" "$sk1" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); c0, c1, t0, t1 = map(float, sys.argv[2:6])
(b0, io0, n0), (b1, io1, n1) = (map(float, x.split()) for x in sys.argv[6:8])
wb0, wb1, ncpu = float(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
hz, wall = 100.0, t1 - t0
busy_pct = 100 * (b1 - b0) / (n1 - n0) * ncpu          # % of one core, all cores together
other_pct = busy_pct - 100 * (c1 - c0) / wall - 100 * r["client_cpu_s"] / wall
iowait_pct = 100 * (io1 - io0) / (n1 - n0) * ncpu
sk0, sk1 = float(sys.argv[11]), float(sys.argv[12])
made = r["creates_201"] + r["warmup"].get("201", 0)      # bookings of the level (+ in flight at the end)
L = r["latency_all"]; s = r["sampled_201"]; m = r["max_bookings_per_provider_day"] or {}
print(f"c={r['c']}: {r['creates_per_s']:,.1f} creates/s ({r['creates_201']} in {r['secs']:.1f} s; {r['requests_per_s']:,.1f} requests/s); "
      f"latency p50 {L['p50_ms']} p90 {L['p90_ms']} p99 {L['p99_ms']} max {L['max_ms']} ms; statuses {r['statuses']}; "
      f"routed {100 * (r['routed_share'] or 0):.1f} %, 422 {r['reasons_422']}; conn errors {r['connection_errors']}; "
      f"server CPU {100 * (c1 - c0) / (t1 - t0):.0f} % of one core, client {r['client_cpu_pct']} %; "
      f"sampled 201s: {s['candidates_mean']} candidates / {s['excluded_mean']} exclusions kept, {s['response_kb_mean']} KB; "
      f"busiest provider-day {m.get('bookings')} of capacity {m.get('capacity')}, provider-days at capacity {r['provider_days_at_capacity']}; "
      f"machine: busy {busy_pct:.0f} % of {100 * ncpu} % (outside server + client {other_pct:.0f} %), iowait {iowait_pct:.0f} %; "
      f"server wrote {(wb1 - wb0) / 2**20:,.0f} MB to disk ({(wb1 - wb0) / 2**20 / wall:.0f} MB/s, "
      f"{(wb1 - wb0) / 1024 / max(1, made):.1f} KB per booking); store +{(sk1 - sk0) / 1024:,.0f} MB "
      f"({(sk1 - sk0) / max(1, made):.1f} KB per booking)")
PY
)
  line="$line; load avg $la0 -> $la1; RSS $(mb "$rss") MB, peak $(mb "$hwm") MB"
  if "$PY" -c 'import re,sys; m=re.search(r"outside server \+ client (-?\d+) %", sys.argv[1]); sys.exit(0 if m and int(m.group(1)) > 25 else 1)' "$line"; then
    line="$line; WARNING: other load on the machine during this level (see 'outside server + client'), figures are contended"
  fi
  echo "$line"; summary+=("$line")
  line="c=$c server: $(dx_snapshot_delta "$DX_TMP/snap0" "$DX_TMP/snap1")"
  echo "$line"; summary+=("$line")
  if ! kill -0 "$DX_PID" 2>/dev/null; then
    echo "--- server stderr (tail) ---"; tail -n 40 "$DX_TMP/server.err"; die "server died during c=$c"
  fi
  li=$((li + 1))
done

echo "=== routing_http summary (run $RUN, $(date -u '+%Y-%m-%d %H:%M:%S') UTC) ==="
echo "network: $(nsum providers) providers ($(nsum gold_silver_active) active gold/silver), $(nsum pincodes) pincodes, capacity x$CAP_SCALE, slots $DAY0 + $DAYS days"
echo "$NETLINE"
echo "$CEILLINE"
printf '%s\n' "${summary[@]}"
dx_report_end
