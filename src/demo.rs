//! The demo network loaded on the first start of an empty store, so a newcomer sees DxStack
//! work at once: one partner, a catalog, providers in Bengaluru and Mumbai, a policy, members.
//! It goes through the committer like any other command, so it is audited and durable.

use crate::auth::{self, KeyOwner, Principal};
use crate::engine::{Command, Handle, Request};
use std::collections::BTreeMap;
use workflows::network::{
    Branding, CatalogService, GeoPoint, Partner, Provider, ProviderKind, ServiceCategory, Sso,
};
use workflows::policy::{Benefit, BenefitScope, Member, Policy, Relationship};
use workflows::{
    Date, MemberId, Millis, Paise, PartnerId, PolicyId, ProviderId, ServiceCode, Timestamp,
};

/// The keys the demo issued (printed once at start-up).
pub struct DemoKeys {
    pub partner: String,
    pub providers: Vec<(String, String)>,
}

impl DemoKeys {
    pub fn describe(&self, addr: &str) -> String {
        let mut s = String::from(
            "demo network loaded (partner demo-health, member m-asha, services CBC LIPID TSH)\n",
        );
        s.push_str(&format!("  partner key  demo-health: {}\n", self.partner));
        for (id, key) in &self.providers {
            s.push_str(&format!("  provider key {id}: {key}\n"));
        }
        s.push_str(&format!(
            "  try: curl -s -H 'authorization: Bearer {}' http://{addr}/v1/members/m-asha",
            self.partner
        ));
        s
    }
}

fn code(s: &str) -> anyhow::Result<ServiceCode> {
    ServiceCode::parse(s).map_err(anyhow::Error::from)
}

fn date(s: &str) -> anyhow::Result<Date> {
    Date::parse(s).ok_or_else(|| anyhow::anyhow!("bad demo date {s}"))
}

async fn submit(engine: &Handle, principal: Principal, command: Command) -> anyhow::Result<()> {
    let reply = engine
        .submit(Request {
            principal,
            request_id: format!("demo-{}", uuid::Uuid::now_v7()),
            idempotency: None,
            command,
        })
        .await;
    anyhow::ensure!(
        reply.status < 300,
        "demo load failed ({}): {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(())
}

async fn key(engine: &Handle, owner: KeyOwner) -> anyhow::Result<String> {
    let plain = auth::generate_key();
    submit(
        engine,
        Principal::Admin,
        Command::CreateKey {
            owner,
            key_id: uuid::Uuid::now_v7().to_string(),
            key_hash: auth::hash_key(&plain),
            key_plain: plain.clone(),
        },
    )
    .await?;
    Ok(plain)
}

struct DemoProvider {
    id: &'static str,
    name: &'static str,
    tier: &'static str,
    lat: f64,
    lon: f64,
    pincode: &'static str,
    serves: &'static [&'static str],
    quality: f64,
}

const PROVIDERS: [DemoProvider; 4] = [
    DemoProvider {
        id: "blr-lab-mg-road",
        name: "MG Road Diagnostics",
        tier: "gold",
        lat: 12.9756,
        lon: 77.6050,
        pincode: "560001",
        serves: &["560001", "560002", "560025"],
        quality: 4.6,
    },
    DemoProvider {
        id: "blr-lab-koramangala",
        name: "Koramangala Labs",
        tier: "silver",
        lat: 12.9352,
        lon: 77.6245,
        pincode: "560034",
        serves: &["560034", "560001", "560095"],
        quality: 4.2,
    },
    DemoProvider {
        id: "bom-lab-fort",
        name: "Fort Pathology",
        tier: "gold",
        lat: 18.9322,
        lon: 72.8351,
        pincode: "400001",
        serves: &["400001", "400002", "400005"],
        quality: 4.4,
    },
    DemoProvider {
        id: "bom-lab-andheri",
        name: "Andheri Health Lab",
        tier: "silver",
        lat: 19.1136,
        lon: 72.8697,
        pincode: "400053",
        serves: &["400053", "400058", "400001"],
        quality: 4.0,
    },
];

/// Loads the demo network and returns its keys.
pub async fn load(engine: &Handle) -> anyhow::Result<DemoKeys> {
    let t0 = Timestamp(0);
    let partner_id = PartnerId::parse("demo-health")?;
    submit(
        engine,
        Principal::Admin,
        Command::PutPartner(Partner {
            id: partner_id.clone(),
            name: "Demo Health Insurance".into(),
            branding: Branding {
                display_name: Some("Demo Health".into()),
                primary_color: Some("#0b5fff".into()),
                accent_color: Some("#00a67e".into()),
                ..Branding::default()
            },
            sso: Sso::default(),
            created_at: t0,
            updated_at: t0,
        }),
    )
    .await?;
    let catalog = [
        ("CBC", "Complete blood count", 24),
        ("LIPID", "Lipid profile", 24),
        ("TSH", "Thyroid stimulating hormone", 48),
    ];
    for (c, name, tat_h) in catalog {
        submit(
            engine,
            Principal::Admin,
            Command::PutCatalog(CatalogService {
                code: code(c)?,
                name: name.into(),
                category: ServiceCategory::Lab,
                report_tat: Millis(tat_h * 3_600_000),
                updated_at: t0,
            }),
        )
        .await?;
    }
    let mut provider_keys = Vec::new();
    for p in &PROVIDERS {
        let mut services = BTreeMap::new();
        services.insert(code("CBC")?, Paise(40_000));
        services.insert(code("LIPID")?, Paise(65_000));
        services.insert(code("TSH")?, Paise(50_000));
        let id = ProviderId::parse(p.id)?;
        submit(
            engine,
            Principal::Admin,
            Command::PutProvider(Provider {
                id: id.clone(),
                name: p.name.into(),
                kind: ProviderKind::Lab,
                network_tier: p.tier.into(),
                location: GeoPoint {
                    lat: p.lat,
                    lon: p.lon,
                },
                pincode: p.pincode.into(),
                serviceable_pincodes: p.serves.iter().map(|s| s.to_string()).collect(),
                radius_km: 8.0,
                services,
                daily_capacity: 40,
                accept_within: Millis(30 * 60_000),
                fulfil_grace: Millis(2 * 3_600_000),
                quality_score: p.quality,
                active: true,
                open_hours: None,
                created_at: t0,
                updated_at: t0,
            }),
        )
        .await?;
        provider_keys.push((p.id.to_string(), key(engine, KeyOwner::Provider(id)).await?));
    }
    let partner = Principal::Partner(partner_id.clone());
    let policy_id = PolicyId::parse("demo-gold-2026")?;
    submit(
        engine,
        partner.clone(),
        Command::PutPolicy(Policy {
            partner_id: partner_id.clone(),
            id: policy_id.clone(),
            valid_from: date("2026-01-01")?,
            valid_to: date("2030-12-31")?,
            floater: true,
            network_tiers: vec!["gold".into(), "silver".into()],
            benefits: vec![Benefit {
                scope: BenefitScope::Category(ServiceCategory::Lab),
                annual_limit: Some(Paise(500_000)),
                annual_count: Some(12),
                per_visit_cap: Some(Paise(150_000)),
                copay_percent: 10,
                waiting_period_days: 0,
                relationships: vec![
                    Relationship::SelfMember,
                    Relationship::Spouse,
                    Relationship::Child,
                ],
                min_age: None,
                max_age: None,
            }],
            created_at: t0,
            updated_at: t0,
        }),
    )
    .await?;
    let members = [
        (
            "m-asha",
            "Asha Rao",
            Relationship::SelfMember,
            "1988-04-12",
            "F",
            "560001",
            "+919800000001",
        ),
        (
            "m-vikram",
            "Vikram Rao",
            Relationship::Spouse,
            "1986-09-30",
            "M",
            "560001",
            "+919800000002",
        ),
        (
            "m-meera",
            "Meera Shah",
            Relationship::SelfMember,
            "1992-01-20",
            "F",
            "400001",
            "+919800000003",
        ),
    ];
    for (id, name, rel, dob, gender, pincode, phone) in members {
        let member_id = MemberId::parse(id)?;
        let family_id = if id == "m-vikram" {
            MemberId::parse("m-asha")?
        } else {
            member_id.clone()
        };
        submit(
            engine,
            partner.clone(),
            Command::PutMember(Member {
                partner_id: partner_id.clone(),
                id: member_id,
                policy_id: policy_id.clone(),
                relationship: rel,
                dob: date(dob)?,
                gender: gender.into(),
                pincode: pincode.into(),
                name: name.into(),
                phone: phone.into(),
                enrolled_on: date("2026-01-01")?,
                family_id,
                created_at: t0,
                updated_at: t0,
            }),
        )
        .await?;
    }
    let partner_key = key(engine, KeyOwner::Partner(partner_id)).await?;
    Ok(DemoKeys {
        partner: partner_key,
        providers: provider_keys,
    })
}
