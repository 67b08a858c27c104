#!/usr/bin/env bash
# benches/eligibility/import.sh: bulk member roster import, POST /v1/members/import (text/csv).
#
#   1. build (BUILD=0 skips), fresh store, server on $LISTEN (127.0.0.1:8095), the fixture of
#      dry_run.sh (fixture.sh: el_fixture + one preflight eligibility check)
#   2. gen_roster.py: $ROWS (100000) valid rows (+ $BAD deliberately invalid ones, default 0)
#      in families of four on pol-bench; stops unless the file is under 10,000,000 bytes
#      (the upload limit is 10 MB = `[server] max_upload`, 10 MiB by default)
#   3. one `curl --data-binary @roster.csv -H 'content-type: text/csv'` upload: wall time,
#      HTTP status, `imported`, `rejected` (count, codes, first samples); server CPU and RSS
#      sampled every 0.1 s during the upload; peak RSS (VmHWM) and RSS after
#   4. $VERIFY (20) random rows: GET /v1/members/{id} must answer 200 with the row's fields;
#      a member id that was not in the file must be 404; POST /v1/eligibility for 3 imported
#      members must answer eligible
#   5. OVERSIZE=1 (default): the roster repeated past 10 MiB must be refused: 413 body_too_large
#   6. REIMPORT=1: upload the same file again (every row an update of an existing member)
#   7. SIGTERM, check the exit code
#
# Usage: benches/eligibility/import.sh
#   env  ROWS (100000), BAD (0), VERIFY (20), OVERSIZE (1), REIMPORT (0), SEED (42), and those of
#        ../http/lib.sh: LISTEN, BUILD, BENCH_TMP, KEEP, RUST_LOG, EXTRA_CONFIG
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fixture.sh
source "$HERE/fixture.sh"
SAMPLER=""
cleanup() { local rc=$?; [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true; (exit $rc); dx_cleanup; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ROWS=${ROWS:-100000}; BAD=${BAD:-0}; VERIFY=${VERIFY:-20}; REIMPORT=${REIMPORT:-0}; OVERSIZE=${OVERSIZE:-1}; SEED=${SEED:-42}
LIMIT_BYTES=10000000

dx_build
dx_tmp
dx_config "$DX_TMP"
dx_start "$DX_TMP"
el_fixture
el_preflight

CSV=$DX_TMP/roster.csv
python3 "$HERE/gen_roster.py" "$CSV" "$ROWS" pol-bench "$BAD" "$SEED"
size=$(stat -c %s "$CSV"); lines=$(($(wc -l <"$CSV") - 1))
log "roster $CSV: $lines rows ($ROWS valid + $BAD invalid), $size bytes ($(mb $((size / 1024))) MiB)"
[ "$size" -lt "$LIMIT_BYTES" ] || die "roster is $size bytes, not under $LIMIT_BYTES (the 10 MB upload limit)"

# upload FILE TAG: one import; prints the summary line, leaves the response in $DX_TMP/TAG.json
upload() {
  local file=$1 tag=$2 code t0 t1 cpu0 cpu1 la0 la1 hwm0 rss0 hwm rss
  la0=$(loadavg); read -r hwm0 rss0 < <(dx_mem "$DX_PID"); cpu0=$(dx_cpu "$DX_PID")
  ( while kill -0 "$DX_PID" 2>/dev/null; do echo "$(date +%s.%N) $(dx_mem "$DX_PID") $(dx_cpu "$DX_PID")"; sleep 0.1; done ) \
    >"$DX_TMP/$tag-rss.log" 2>/dev/null &
  SAMPLER=$!
  log "$tag: POST /v1/members/import ($(stat -c %s "$file") bytes); load average before: $la0"
  t0=$(date +%s.%N)
  code=$(curl -sS -m 600 -o "$DX_TMP/$tag.json" -w '%{http_code} %{time_total}' \
    -X POST "$BASE/v1/members/import" -H "authorization: Bearer $DX_PARTNER_KEY" \
    -H 'content-type: text/csv' --data-binary "@$file") || die "$tag: curl failed: $code"
  t1=$(date +%s.%N)
  kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  cpu1=$(dx_cpu "$DX_PID"); la1=$(loadavg); read -r hwm rss < <(dx_mem "$DX_PID")
  python3 - "$DX_TMP/$tag.json" "$tag" "$code" "$t0" "$t1" "$cpu0" "$cpu1" "$(mb "$rss0")" "$(mb "$hwm0")" \
            "$(mb "$rss")" "$(mb "$hwm")" "$la0" "$la1" "$DX_TMP/$tag-rss.log" <<'PY'
import collections, json, sys
path, tag, code = sys.argv[1:4]
status, total = code.split()
t0, t1, cpu0, cpu1 = map(float, sys.argv[4:8])
rss0, hwm0, rss, hwm, la0, la1, rsslog = sys.argv[8:15]
body = open(path).read()
print(f"{tag}: HTTP {status} in {float(total):.2f} s (curl time_total; {t1 - t0:.2f} s around the curl process); "
      f"server CPU {cpu1 - cpu0:.2f} s")
try:
    r = json.loads(body)
    rej = r.get("rejected", [])
    codes = collections.Counter(x.get("code") for x in rej)
    print(f"{tag}: imported {r.get('imported')}, rejected {len(rej)} {dict(codes) if codes else ''}")
    for x in rej[:4]:
        print(f"  rejected line {x.get('line')}: {x.get('code')}: {str(x.get('message'))[:200]}")
except ValueError:
    print(f"{tag}: answer is not JSON: {body[:1000]}")
peak_sampled = max((int(l.split()[2]) for l in open(rsslog) if len(l.split()) >= 3), default=0)
print(f"{tag}: server RSS before {rss0} MB (peak so far {hwm0} MB); highest sampled RSS during the upload "
      f"{peak_sampled / 1024:.1f} MB; after: RSS {rss} MB, peak (VmHWM) {hwm} MB; "
      f"loadavg before {la0}, after {la1}")
PY
  [ "${code%% *}" = 200 ] || { tail -n 20 "$DX_TMP/server.err"; die "$tag: import answered HTTP ${code%% *}"; }
}

upload "$CSV" import
imported=$(jget imported <"$DX_TMP/import.json")
nrej=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rejected"]))' "$DX_TMP/import.json")
[ "$imported" = "$ROWS" ] || echo "WARNING: imported $imported, expected $ROWS"
[ "$nrej" = "$BAD" ] || echo "WARNING: rejected $nrej, expected $BAD"

log "verifying $VERIFY random members with GET /v1/members/{id}"
verify_rc=0
python3 - "$CSV" "$VERIFY" "$BASE" "$DX_PARTNER_KEY" "$SEED" <<'PY' || verify_rc=$?
import csv, json, random, sys, time, urllib.error, urllib.request
path, n, base, key, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = [r for r in csv.DictReader(open(path)) if r["member_id"].startswith("m")]
rng = random.Random(seed + 1)
pick = rng.sample(rows, min(n, len(rows)))
def req(method, p, body=None):
    r = urllib.request.Request(base + p, method=method, headers={"authorization": f"Bearer {key}",
        "content-type": "application/json"}, data=json.dumps(body).encode() if body else None)
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), time.perf_counter() - t
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()[:500], time.perf_counter() - t
bad, lat = 0, []
for row in pick:
    st, m, dt = req("GET", f"/v1/members/{row['member_id']}")
    lat.append(dt)
    if st != 200:
        bad += 1; print(f"  GET /v1/members/{row['member_id']} -> {st}: {m}"); continue
    diff = {k: (v, m.get(k)) for k, v in row.items() if str(m.get(k)) != v}
    if diff:
        bad += 1; print(f"  member {row['member_id']}: fields differ (csv, api): {diff}")
lat.sort()
print(f"verify: {len(pick) - bad}/{len(pick)} random members found with every CSV field equal "
      f"(GET p50 {1000 * lat[len(lat) // 2]:.2f} ms, max {1000 * lat[-1]:.2f} ms)"
      + (f"; e.g. {pick[0]['member_id']} = {json.dumps({k: pick[0][k] for k in ('relationship', 'dob', 'pincode', 'family_id')})}" if pick else ""))
st, m, _ = req("GET", f"/v1/members/m{len(rows) + 1}")
print(f"verify: GET /v1/members/m{len(rows) + 1} (not in the file) -> {st} (expected 404)")
for row in pick[:3]:
    st, r, dt = req("POST", "/v1/eligibility", {"member_id": row["member_id"], "services": ["CBC"],
        "slot": {"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"},
        "address": {"pincode": "560001", "lat": 12.97, "lon": 77.59}})
    ok = st == 200 and isinstance(r, dict) and r.get("eligible") is True
    if not ok: bad += 1
    print(f"verify: eligibility of {row['member_id']} ({row['relationship']}, dob {row['dob']}) -> {st} "
          + (f"eligible={r.get('eligible')} copay {r.get('copay_paise')} reasons {r.get('reasons')}" if isinstance(r, dict) else str(r)))
sys.exit(1 if bad else 0)
PY

if [ "$OVERSIZE" = 1 ]; then
  # the same roster repeated past 10 MiB (the default max_upload): must be refused whole with
  # 413 body_too_large, nothing imported
  BIG=$DX_TMP/oversize.csv; cp "$CSV" "$BIG"
  while [ "$(stat -c %s "$BIG")" -le $((10 << 20)) ]; do tail -n +2 "$CSV" >>"$BIG"; done
  out=$(curl -sS -m 120 -w ' HTTP %{http_code} in %{time_total} s' -X POST "$BASE/v1/members/import" \
    -H "authorization: Bearer $DX_PARTNER_KEY" -H 'content-type: text/csv' --data-binary "@$BIG" 2>&1 || true)
  echo "oversize: $(stat -c %s "$BIG") bytes -> $(head -c 600 <<<"$out")"
  case "$out" in *"HTTP 413"*) ;; *) echo "WARNING: oversize upload not answered 413"; verify_rc=1 ;; esac
fi

if [ "$REIMPORT" = 1 ]; then upload "$CSV" reimport; fi

store_kb=$(du -sk "$DX_TMP/data" | cut -f1)
errlines=$(grep -c -E 'ERROR|panicked' "$DX_TMP/server.err" || true)
echo "store on disk $(mb "$store_kb") MB; server stderr: $errlines ERROR/panic lines"
[ "$errlines" -gt 0 ] && grep -m 5 -E 'ERROR|panicked' "$DX_TMP/server.err" | cut -c1-400
dx_stop
[ "${DX_STOP_RC:-0}" = 0 ] || echo "WARNING: server exit code after SIGTERM was $DX_STOP_RC (contract: 0)"
exit "$verify_rc"
