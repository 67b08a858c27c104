//! How records look on the wire (API.md field names). Used by handlers and by the committer,
//! which renders the reply it stores for idempotent replay.

use crate::clock::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;
use workflows::booking::{BookingRecord, RouteChoice};
use workflows::case::ExceptionCase;
use workflows::network::{CatalogService, Operator, Partner, Provider};
use workflows::policy::{BenefitScope, Member, Policy};
use workflows::sla::SlaEntry;
use workflows::Millis;

#[derive(Serialize, ToSchema)]
pub struct BookingView {
    pub id: String,
    pub state: &'static str,
    pub partner_id: String,
    pub member_id: String,
    pub policy_id: String,
    pub services: Vec<String>,
    pub mode: &'static str,
    pub slot: SlotView,
    pub address: AddressView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_ref: Option<String>,
    pub provider_id: Option<String>,
    pub amounts: AmountsView,
    pub sla: Vec<SlaView>,
    pub routing: Option<RoutingView>,
    pub exceptions: Vec<CaseSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed_paise: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SlotView {
    pub start: String,
    pub end: String,
}

#[derive(Serialize, ToSchema)]
pub struct AddressView {
    pub pincode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct AmountsView {
    pub currency: &'static str,
    pub gross_paise: i64,
    pub covered_paise: i64,
    pub copay_paise: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SlaView {
    pub kind: &'static str,
    pub started_at: String,
    pub due_at: String,
    pub at_risk_at: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breached_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoutingView {
    pub attempt: u32,
    pub trigger: &'static str,
    pub decided_at: String,
    pub provider_id: Option<String>,
    pub candidates: Vec<CandidateView>,
    pub excluded: Vec<ExcludedView>,
}

#[derive(Serialize, ToSchema)]
pub struct CandidateView {
    pub provider_id: String,
    pub score: f64,
    pub distance_km: f64,
    pub components: ComponentsView,
}

#[derive(Serialize, ToSchema)]
pub struct ComponentsView {
    pub distance: f64,
    pub quality: f64,
    pub load: f64,
    pub price: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ExcludedView {
    pub provider_id: String,
    pub reason: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CaseSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub case_type: &'static str,
    pub state: &'static str,
    pub severity: &'static str,
    pub opened_at: String,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn routing_view(r: &RouteChoice) -> RoutingView {
    RoutingView {
        attempt: r.attempt,
        trigger: r.trigger.as_str(),
        decided_at: rfc3339(r.decided_at),
        provider_id: r.provider_id.as_ref().map(|p| p.to_string()),
        candidates: r
            .candidates
            .iter()
            .map(|c| CandidateView {
                provider_id: c.provider_id.to_string(),
                score: round3(c.score),
                distance_km: round3(c.distance_km),
                components: ComponentsView {
                    distance: round3(c.components.distance),
                    quality: round3(c.components.quality),
                    load: round3(c.components.load),
                    price: round3(c.components.price),
                },
            })
            .collect(),
        excluded: r
            .excluded
            .iter()
            .map(|e| ExcludedView {
                provider_id: e.provider_id.to_string(),
                reason: e.reason.as_str(),
            })
            .collect(),
    }
}

fn sla_view(e: &SlaEntry) -> SlaView {
    SlaView {
        kind: e.kind.as_str(),
        started_at: rfc3339(e.started_at),
        due_at: rfc3339(e.due_at),
        at_risk_at: rfc3339(e.at_risk_at),
        state: e.state.as_str(),
        met_at: e.met_at.map(rfc3339),
        breached_at: e.breached_at.map(rfc3339),
    }
}

pub fn case_summary(c: &ExceptionCase) -> CaseSummary {
    CaseSummary {
        id: c.id.to_string(),
        case_type: c.case_type.as_str(),
        state: c.state.as_str(),
        severity: c.severity.as_str(),
        opened_at: rfc3339(c.opened_at),
    }
}

pub fn booking_view(record: &BookingRecord, cases: &[ExceptionCase]) -> BookingView {
    let b = &record.booking;
    BookingView {
        id: b.id.to_string(),
        state: record.state().as_str(),
        partner_id: b.partner_id.to_string(),
        member_id: b.member_id.to_string(),
        policy_id: b.policy_id.to_string(),
        services: b.services.iter().map(|s| s.to_string()).collect(),
        mode: b.mode.as_str(),
        slot: SlotView {
            start: rfc3339(b.slot.start),
            end: rfc3339(b.slot.end),
        },
        address: AddressView {
            pincode: b.address.pincode.clone(),
            lat: b.address.lat,
            lon: b.address.lon,
        },
        partner_ref: b.partner_ref.clone(),
        provider_id: b.provider_id.as_ref().map(|p| p.to_string()),
        amounts: AmountsView {
            currency: "INR",
            gross_paise: b.amounts.gross.0,
            covered_paise: b.amounts.covered.0,
            copay_paise: b.amounts.copay.0,
        },
        sla: b.sla.iter().map(sla_view).collect(),
        routing: b.routing.last().map(routing_view),
        exceptions: cases.iter().map(case_summary).collect(),
        report_url: b.report_url.clone(),
        billed_paise: b.billed.map(|p| p.0),
        cancel_reason: b.cancel_reason.clone(),
        version: b.version,
        created_at: rfc3339(b.created_at),
        updated_at: rfc3339(b.updated_at),
    }
}

/// Human duration for output, e.g. `"24h"`, `"90m"`, `"45s"`.
pub fn human_duration(d: Millis) -> String {
    let ms = d.0;
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

pub fn partner_view(p: &Partner) -> serde_json::Value {
    serde_json::json!({
        "id": p.id.as_str(),
        "name": p.name,
        "branding": {
            "display_name": p.branding.display_name,
            "logo_url": p.branding.logo_url,
            "primary_color": p.branding.primary_color,
            "accent_color": p.branding.accent_color,
            "domain": p.branding.domain,
        },
        "sso": {
            "hs256_secret_set": p.sso.hs256_secret.is_some(),
            "rs256_public_key_set": p.sso.rs256_public_key_pem.is_some(),
            "allowed_return_origins": p.sso.allowed_return_origins,
        },
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

pub fn catalog_view(s: &CatalogService) -> serde_json::Value {
    serde_json::json!({
        "code": s.code.as_str(),
        "name": s.name,
        "category": s.category.as_str(),
        "report_tat": human_duration(s.report_tat),
        "updated_at": rfc3339(s.updated_at),
    })
}

pub fn provider_view(p: &Provider) -> serde_json::Value {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let open_hours = p.open_hours.as_ref().map(|week| {
        let mut m = serde_json::Map::new();
        for (i, ranges) in week.iter().enumerate() {
            if ranges.is_empty() {
                continue;
            }
            let list: Vec<String> = ranges
                .iter()
                .map(|r| {
                    format!(
                        "{:02}:{:02}-{:02}:{:02}",
                        r.open_min / 60,
                        r.open_min % 60,
                        r.close_min / 60,
                        r.close_min % 60
                    )
                })
                .collect();
            m.insert(DAYS[i].into(), serde_json::json!(list));
        }
        serde_json::Value::Object(m)
    });
    let services: serde_json::Map<String, serde_json::Value> = p
        .services
        .iter()
        .map(|(code, rate)| {
            (
                code.to_string(),
                serde_json::json!({ "rate_paise": rate.0 }),
            )
        })
        .collect();
    serde_json::json!({
        "id": p.id.as_str(),
        "name": p.name,
        "kind": p.kind.as_str(),
        "network_tier": p.network_tier,
        "location": { "lat": p.location.lat, "lon": p.location.lon, "pincode": p.pincode },
        "serviceable_pincodes": p.serviceable_pincodes,
        "radius_km": p.radius_km,
        "services": services,
        "daily_capacity": p.daily_capacity,
        "sla": { "accept_within": human_duration(p.accept_within), "fulfil_grace": human_duration(p.fulfil_grace) },
        "quality_score": p.quality_score,
        "active": p.active,
        "open_hours": open_hours,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

pub fn operator_view(o: &Operator) -> serde_json::Value {
    serde_json::json!({
        "id": o.id.as_str(),
        "name": o.name,
        "role": o.role.as_str(),
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at),
    })
}

pub fn policy_view(p: &Policy) -> serde_json::Value {
    let benefits: Vec<serde_json::Value> = p
        .benefits
        .iter()
        .map(|b| {
            let mut v = serde_json::json!({
                "annual_limit_paise": b.annual_limit.map(|x| x.0),
                "annual_count": b.annual_count,
                "per_visit_cap_paise": b.per_visit_cap.map(|x| x.0),
                "copay_percent": b.copay_percent,
                "waiting_period_days": b.waiting_period_days,
                "relationships": b.relationships.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "min_age": b.min_age,
                "max_age": b.max_age,
            });
            match &b.scope {
                BenefitScope::Service(code) => v["service_code"] = code.as_str().into(),
                BenefitScope::Category(c) => v["category"] = c.as_str().into(),
            }
            v
        })
        .collect();
    serde_json::json!({
        "id": p.id.as_str(),
        "partner_id": p.partner_id.as_str(),
        "valid_from": p.valid_from.to_string(),
        "valid_to": p.valid_to.to_string(),
        "floater": p.floater,
        "network_tiers": p.network_tiers,
        "benefits": benefits,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

pub fn member_view(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "id": m.id.as_str(),
        "member_id": m.id.as_str(),
        "partner_id": m.partner_id.as_str(),
        "policy_id": m.policy_id.as_str(),
        "relationship": m.relationship.as_str(),
        "dob": m.dob.to_string(),
        "gender": m.gender,
        "pincode": m.pincode,
        "name": m.name,
        "phone": m.phone,
        "enrolled_on": m.enrolled_on.to_string(),
        "family_id": m.family_id.as_str(),
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    })
}

pub fn case_view(c: &ExceptionCase) -> serde_json::Value {
    serde_json::json!({
        "id": c.id.to_string(),
        "type": c.case_type.as_str(),
        "state": c.state.as_str(),
        "severity": c.severity.as_str(),
        "partner_id": c.partner_id.as_str(),
        "booking_id": c.booking_id.map(|b| b.to_string()),
        "provider_id": c.provider_id.as_ref().map(|p| p.as_str()),
        "detail": c.detail,
        "assignee": c.assignee,
        "opened_at": rfc3339(c.opened_at),
        "updated_at": rfc3339(c.updated_at),
        "history": c.history.iter().map(|h| serde_json::json!({
            "at": rfc3339(h.at),
            "action": h.action,
            "by": h.by,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
    })
}

/// A booking as its provider sees it. Data minimisation: before `accept` only what is needed
/// to decide (services, slot, pincode, its price, its SLA); the member's name, phone and
/// full address appear once the provider has accepted.
pub fn provider_booking_view(record: &BookingRecord, member: Option<&Member>) -> serde_json::Value {
    let b = &record.booking;
    let state = record.state();
    let accepted = b.accepted_by_current_provider();
    let mut v = serde_json::json!({
        "id": b.id.to_string(),
        "state": state.as_str(),
        "provider_id": b.provider_id.as_ref().map(|p| p.as_str()),
        "services": b.services.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "mode": b.mode.as_str(),
        "slot": { "start": rfc3339(b.slot.start), "end": rfc3339(b.slot.end) },
        "address": { "pincode": b.address.pincode },
        "amounts": { "currency": "INR", "gross_paise": b.amounts.gross.0 },
        "sla": b.sla.iter().map(sla_view).collect::<Vec<_>>(),
        "report_url": b.report_url,
        "billed_paise": b.billed.map(|p| p.0),
        "version": b.version,
        "created_at": rfc3339(b.created_at),
        "updated_at": rfc3339(b.updated_at),
    });
    if accepted {
        v["address"] = serde_json::json!({
            "pincode": b.address.pincode,
            "lat": b.address.lat,
            "lon": b.address.lon,
        });
        v["member"] = serde_json::json!({
            "member_id": b.member_id.as_str(),
            "name": member.map(|m| m.name.as_str()),
            "phone": member.map(|m| m.phone.as_str()),
        });
    }
    v
}
