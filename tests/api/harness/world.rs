//! A small, fixed network and tenant set to test against.
//!
//! Catalog: `CBC` (lab, 24h) and `LIPID` (lab, 48h).
//! Providers (all with keys):
//! - `blr-lab-1` (560001; serves 560001 + 560002; CBC + LIPID)
//! - `blr-lab-2` (560002; serves 560001 + 560002; CBC + LIPID)
//! - `blr-cbc-only` (560001; serves 560001; CBC only)
//! - `blr-inactive` (560001; serves 560001 + 560002; CBC + LIPID; `active: false`)
//! - `mum-lab-1` (400001; serves 400001; CBC + LIPID)
//!
//! So a CBC + LIPID home collection at 560001 has exactly two candidates: the `blr-lab-*` pair.
//! Partner `pa` has policy `pa-gold` (2024-01-01..2035-12-31, lab benefit with limits far above
//! anything a test uses, no copay), members `pa-m0..pa-m3` in 560001 and `pa-mum` in 400001.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::TestApp;

/// A slot well in the future, inside the policy, on one India day.
pub(crate) const SLOT_START: &str = "2030-01-01T09:00:00Z";
pub(crate) const SLOT_END: &str = "2030-01-01T10:00:00Z";

pub(crate) const BLR_FULL: [&str; 2] = ["blr-lab-1", "blr-lab-2"];

pub(crate) struct Provider {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) rates: BTreeMap<String, i64>,
}

pub(crate) struct Partner {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) policy_id: String,
    /// Members living in 560001 (Bengaluru).
    pub(crate) members: Vec<String>,
    /// A member living in 400001 (Mumbai).
    pub(crate) mumbai_member: String,
}

pub(crate) struct World {
    pub(crate) providers: Vec<Provider>,
    /// Partner `pa`.
    pub(crate) partner: Partner,
}

struct ProviderSpec {
    id: &'static str,
    lat: f64,
    lon: f64,
    pincode: &'static str,
    serves: &'static [&'static str],
    rates: &'static [(&'static str, i64)],
    quality: f64,
    active: bool,
}

const PROVIDERS: [ProviderSpec; 5] = [
    ProviderSpec {
        id: "blr-lab-1",
        lat: 12.9716,
        lon: 77.5946,
        pincode: "560001",
        serves: &["560001", "560002"],
        rates: &[("CBC", 40_000), ("LIPID", 60_000)],
        quality: 4.5,
        active: true,
    },
    ProviderSpec {
        id: "blr-lab-2",
        lat: 12.9850,
        lon: 77.6050,
        pincode: "560002",
        serves: &["560001", "560002"],
        rates: &[("CBC", 35_000), ("LIPID", 65_000)],
        quality: 4.0,
        active: true,
    },
    ProviderSpec {
        id: "blr-cbc-only",
        lat: 12.9720,
        lon: 77.5950,
        pincode: "560001",
        serves: &["560001"],
        rates: &[("CBC", 30_000)],
        quality: 5.0,
        active: true,
    },
    ProviderSpec {
        id: "blr-inactive",
        lat: 12.9716,
        lon: 77.5946,
        pincode: "560001",
        serves: &["560001", "560002"],
        rates: &[("CBC", 10_000), ("LIPID", 10_000)],
        quality: 5.0,
        active: false,
    },
    ProviderSpec {
        id: "mum-lab-1",
        lat: 18.9300,
        lon: 72.8300,
        pincode: "400001",
        serves: &["400001"],
        rates: &[("CBC", 45_000), ("LIPID", 70_000)],
        quality: 4.2,
        active: true,
    },
];

/// The body of a provider PUT for `spec`.
fn provider_body(spec: &ProviderSpec) -> Value {
    let services: serde_json::Map<String, Value> = spec
        .rates
        .iter()
        .map(|(code, rate)| (code.to_string(), json!({ "rate_paise": rate })))
        .collect();
    json!({
        "name": format!("Lab {}", spec.id),
        "kind": "lab",
        "network_tier": "gold",
        "location": {"lat": spec.lat, "lon": spec.lon, "pincode": spec.pincode},
        "serviceable_pincodes": spec.serves,
        "radius_km": 15,
        "services": services,
        "daily_capacity": 100_000,
        "sla": {"accept_within": "30m", "fulfil_grace": "2h"},
        "quality_score": spec.quality,
        "active": spec.active,
    })
}

/// A policy in force 2024-01-01..=`valid_to` with a generous lab benefit and no copay.
pub(crate) fn policy_body(valid_to: &str) -> Value {
    json!({
        "valid_from": "2024-01-01",
        "valid_to": valid_to,
        "floater": false,
        "network_tiers": ["gold"],
        "benefits": [{
            "category": "lab",
            "annual_limit_paise": 100_000_000_000_i64,
            "annual_count": 100_000,
            "per_visit_cap_paise": 1_000_000_000,
            "copay_percent": 0,
            "waiting_period_days": 0,
            "relationships": ["self", "spouse", "child", "parent"],
            "min_age": 0,
            "max_age": 120
        }]
    })
}

/// A member body on `policy_id` living in `pincode`.
pub(crate) fn member_body(policy_id: &str, pincode: &str, n: usize) -> Value {
    json!({
        "policy_id": policy_id,
        "relationship": "self",
        "dob": "1985-06-15",
        "gender": "female",
        "pincode": pincode,
        "name": format!("Test Member {n}"),
        "phone": format!("+91980000{n:04}"),
        "enrolled_on": "2024-01-01",
    })
}

/// The string at `v` (panics with the value otherwise).
#[track_caller]
pub(crate) fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

#[track_caller]
fn created_or_replaced(r: &super::Resp) {
    assert!(
        r.status == 200 || r.status == 201,
        "{}: expected 200/201, got {} {}",
        "setup PUT",
        r.status,
        r.text()
    );
}

impl World {
    /// Installs the catalog, the provider network and partner `pa`.
    pub(crate) async fn build(app: &TestApp) -> World {
        for (code, tat) in [("CBC", "24h"), ("LIPID", "48h")] {
            let body =
                json!({"name": format!("{code} test"), "category": "lab", "report_tat": tat});
            created_or_replaced(&app.put_catalog(code, &body).await);
        }
        let mut providers = Vec::new();
        for spec in &PROVIDERS {
            created_or_replaced(&app.put_provider(spec.id, &provider_body(spec)).await);
            providers.push(Provider {
                id: spec.id.to_string(),
                key: app.provider_key(spec.id).await,
                rates: spec
                    .rates
                    .iter()
                    .map(|(c, r)| (c.to_string(), *r))
                    .collect(),
            });
        }
        let partner = World::add_partner(app, "pa").await;
        World { providers, partner }
    }

    /// Creates another partner with its own key, policy `{id}-gold` and members.
    pub(crate) async fn add_partner(app: &TestApp, id: &str) -> Partner {
        let body = json!({
            "name": format!("Partner {id}"),
            "branding": {
                "display_name": format!("Partner {id}"),
                "logo_url": "https://example.com/logo.png",
                "primary_color": "#123456",
                "accent_color": "#654321",
                "domain": format!("{id}.example.com")
            },
            "sso": {"hs256_secret": "0123456789abcdef0123456789abcdef", "allowed_return_origins": []}
        });
        created_or_replaced(&app.put_partner(id, &body).await);
        let key = app.partner_key(id).await;
        let policy_id = format!("{id}-gold");
        created_or_replaced(
            &app.put_policy(&key, &policy_id, &policy_body("2035-12-31"))
                .await,
        );
        let mut members = Vec::new();
        for n in 0..4 {
            let mid = format!("{id}-m{n}");
            created_or_replaced(
                &app.put_member(&key, &mid, &member_body(&policy_id, "560001", n))
                    .await,
            );
            members.push(mid);
        }
        let mumbai_member = format!("{id}-mum");
        let body = member_body(&policy_id, "400001", 99);
        created_or_replaced(&app.put_member(&key, &mumbai_member, &body).await);
        Partner {
            id: id.to_string(),
            key,
            policy_id,
            members,
            mumbai_member,
        }
    }

    /// Re-PUTs provider `id` with its standard body changed by `change` (e.g. a shorter
    /// `sla.accept_within` or `open_hours`); asserts 200.
    pub(crate) async fn reconfigure_provider(
        app: &TestApp,
        id: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let spec = PROVIDERS
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no provider spec {id}"));
        let mut body = provider_body(spec);
        change(&mut body);
        app.put_provider(id, &body).await.ok(200);
    }

    /// The provider with this id (panics if the id is not one of ours).
    #[track_caller]
    pub(crate) fn provider(&self, id: &str) -> &Provider {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("booking routed to unknown provider {id:?}"))
    }

    /// The sum of `provider`'s rates for `services`.
    pub(crate) fn gross(&self, provider: &str, services: &[&str]) -> i64 {
        let p = self.provider(provider);
        services.iter().map(|s| p.rates[*s]).sum()
    }
}

impl Partner {
    /// A CBC + LIPID home collection at 560001 for `members[n]`.
    pub(crate) fn booking(&self, n: usize, partner_ref: &str) -> Value {
        self.booking_for(&self.members[n], &["CBC", "LIPID"], partner_ref)
    }

    /// A home collection at 560001 for `member_id` with `services`.
    pub(crate) fn booking_for(
        &self,
        member_id: &str,
        services: &[&str],
        partner_ref: &str,
    ) -> Value {
        json!({
            "member_id": member_id,
            "services": services,
            "mode": "home_collection",
            "slot": {"start": SLOT_START, "end": SLOT_END},
            "address": {"pincode": "560001", "lat": 12.9716, "lon": 77.5946},
            "partner_ref": partner_ref,
        })
    }
}
