# shellcheck shell=bash
# Fixture of the eligibility benches (sourced by dry_run.sh and import.sh; not run on its own).
# Builds on ../http/lib.sh (build, config, start/stop, api, jget, dx_mem, dx_cpu, dx_fixture).
#
# LISTEN defaults to 127.0.0.1:8095 here (not lib.sh's 8090) so these benches can run while
# another bench holds 8090.

LISTEN=${LISTEN:-127.0.0.1:8095}
_el_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../http/lib.sh
source "$_el_dir/../http/lib.sh"

# el_fixture: dx_fixture (partner pt-bench + key, catalog CBC, provider p-bench + key, policy
# pol-bench, member m-bench), then
#   - 3 more providers serving 560001: p-elig-2 (standard, CBC 45,000 paise, 3 km away),
#     p-elig-3 (standard, CBC 60,000, 5 km), p-elig-4 (premium tier: outside the policy's
#     network, so routing excludes it);
#   - pol-bench replaced by a policy with real limits: one lab benefit, copay 20 %,
#     annual_count 12, annual_limit 5,000,000 paise, per_visit_cap 200,000 paise, waiting period
#     30 days, all relationships, ages 0..150.
el_fixture() {
  dx_fixture
  log "eligibility fixture: providers p-elig-2..4, pol-bench with copay 20 % and limits"
  local id lat lon tier rate q
  for spec in "p-elig-2 12.99 77.60 standard 45000 0.9" \
              "p-elig-3 13.01 77.61 standard 60000 0.8" \
              "p-elig-4 12.96 77.58 premium 40000 1.0"; do
    read -r id lat lon tier rate q <<<"$spec"
    api PUT "/v1/admin/providers/$id" "$ADMIN_TOKEN" "{\"name\":\"Bench Lab $id\",\"kind\":\"lab\",
      \"network_tier\":\"$tier\",\"location\":{\"lat\":$lat,\"lon\":$lon,\"pincode\":\"560001\"},
      \"serviceable_pincodes\":[\"560001\",\"560002\"],\"radius_km\":50,
      \"services\":{\"CBC\":{\"rate_paise\":$rate}},\"daily_capacity\":10000000,
      \"sla\":{\"accept_within\":\"1h\",\"fulfil_grace\":\"2h\"},\"quality_score\":$q,\"active\":true}" >/dev/null
  done
  api PUT /v1/policies/pol-bench "$DX_PARTNER_KEY" '{"valid_from":"2024-01-01","valid_to":"2035-12-31","floater":false,
    "network_tiers":["standard"],
    "benefits":[{"category":"lab","annual_limit_paise":5000000,"annual_count":12,
      "per_visit_cap_paise":200000,"copay_percent":20,"waiting_period_days":30,
      "relationships":["self","spouse","child","parent"],"min_age":0,"max_age":150}]}' >/dev/null
}

# el_preflight: one eligibility check with curl; stops the bench with the exact answer unless
# it is 200, eligible, priced (covered + copay = gross, copay > 0) and routed to a standard-tier
# provider. Prints the answer.
ELIG_BODY='{"member_id":"m-bench","services":["CBC"],"slot":{"start":"2030-01-01T09:00:00Z","end":"2030-01-01T10:00:00Z"}}'
el_preflight() {
  local r
  r=$(api POST /v1/eligibility "$DX_PARTNER_KEY" "$ELIG_BODY") || die "preflight eligibility check failed"
  python3 - "$r" <<'PY' || die "preflight eligibility answer not as expected: $r"
import json, sys
r = json.loads(sys.argv[1])
ok = (r.get("eligible") is True and r.get("copay_paise", 0) > 0
      and r.get("covered_paise", 0) + r["copay_paise"] == r.get("gross_paise")
      and r.get("provider_id") in ("p-bench", "p-elig-2", "p-elig-3"))
sys.exit(0 if ok else 1)
PY
  log "preflight ok: $r"
}

# cpu_busy: busy jiffies of the whole machine (all CPUs; /proc/stat user..steal minus idle/iowait)
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# loadavg: the 1/5/15-min load averages and, more to the point on a shared 2-core box, how busy
# the machine is right now: "% of all cores busy over the last 2 s" (before the bench's own load)
loadavg() {
  local a b
  a=$(awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2
  b=$(awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$(cut -d' ' -f1-3 /proc/loadavg) (busy $(awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); d = y[2] - x[2];
    if (d <= 0) d = 1; printf "%.0f", 100 - 100 * (y[1] - x[1]) / d}')% over 2 s)"
}
