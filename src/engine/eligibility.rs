//! The admission pipeline shared by `POST /v1/bookings`, re-routing and the dry run
//! `POST /v1/eligibility`: catalog → member → policy → routing → ledger usage → rules and
//! pricing. Generic over [`Reader`] so the committer sees its batch's pending writes and the
//! dry run reads committed state without reserving anything.

use super::routing::{self, RouteInput};
use crate::error::ApiError;
use std::collections::BTreeMap;
use store::keys::{self, table};
use store::Reader;
use workflows::booking::{
    Address, Amounts, Booking, CoverState, LedgerRef, ProviderTerms, RouteChoice, RouteTrigger,
    Slot,
};
use workflows::eligibility::{self, benefit_key, Check, PricedService, Usage, Verdict};
use workflows::network::CatalogService;
use workflows::policy::{Member, Policy};
use workflows::{Date, MemberId, Millis, Paise, PartnerId, ProviderId, ServiceCode, Timestamp};

/// What to assess.
pub struct Ask<'a> {
    pub partner: &'a PartnerId,
    pub member_id: &'a MemberId,
    pub services: &'a [ServiceCode],
    pub slot: Slot,
    pub address: Option<&'a Address>,
    pub tried: &'a [ProviderId],
    pub attempt: u32,
    pub trigger: RouteTrigger,
    pub now: Timestamp,
    /// A booking being re-priced: its own reservation counts as available again.
    pub holding: Option<&'a Booking>,
    pub weights: workflows::routing::Weights,
    /// Choose this provider if it is an eligible candidate (an operator's reassign).
    pub prefer: Option<&'a ProviderId>,
}

/// The outcome of the pipeline.
pub struct Assessment {
    pub verdict: Verdict,
    /// The routing decision, with terms (price, SLA windows, cover) when a provider was chosen.
    pub route: RouteChoice,
    pub member: Option<Member>,
    pub policy: Option<Policy>,
    pub address: Address,
    pub ledger: Option<LedgerRef>,
    pub usage: BTreeMap<String, Usage>,
    pub report_tat: Millis,
}

pub fn ledger_key(partner: &PartnerId, l: &LedgerRef, benefit: &str) -> Vec<u8> {
    keys::entitlement(
        partner.as_str(),
        l.holder.as_str(),
        l.policy_id.as_str(),
        l.year_start.0,
        benefit,
    )
}

/// The ledger row owner and policy year of `member` on `day`.
pub fn ledger_of(member: &Member, policy: &Policy, day: Date) -> LedgerRef {
    LedgerRef {
        holder: if policy.floater {
            member.family_id.clone()
        } else {
            member.id.clone()
        },
        policy_id: policy.id.clone(),
        year_start: eligibility::policy_year(policy, day).0,
    }
}

/// Usage of every benefit of `policy` in ledger `l`.
pub fn usage_of(
    r: &impl Reader,
    partner: &PartnerId,
    policy: &Policy,
    l: &LedgerRef,
) -> store::Result<BTreeMap<String, Usage>> {
    let mut out = BTreeMap::new();
    for b in &policy.benefits {
        let key = benefit_key(b);
        let u: Usage = r.get(&ledger_key(partner, l, &key))?.unwrap_or_default();
        out.insert(key, u);
    }
    Ok(out)
}

pub fn assess(r: &impl Reader, ask: &Ask<'_>) -> Result<Assessment, Fault> {
    let mut catalog = Vec::with_capacity(ask.services.len());
    for code in ask.services {
        let s: Option<CatalogService> =
            r.get(&keys::one(table::CATALOG, code.as_str().as_bytes()))?;
        match s {
            Some(s) => catalog.push(s),
            None => {
                return Err(Fault::Api(ApiError::Unprocessable(
                    "unknown_service",
                    format!("service {code} is not in the catalog"),
                )))
            }
        }
    }
    let report_tat = catalog
        .iter()
        .map(|s| s.report_tat)
        .max()
        .unwrap_or_default();
    let partner = ask.partner.as_str();
    let member: Option<Member> = r.get(&keys::scoped(
        table::MEMBER,
        partner,
        ask.member_id.as_str().as_bytes(),
    ))?;
    let policy: Option<Policy> = match &member {
        Some(m) => r.get(&keys::scoped(
            table::POLICY,
            partner,
            m.policy_id.as_str().as_bytes(),
        ))?,
        None => None,
    };
    let address = match (ask.address, &member) {
        (Some(a), _) => a.clone(),
        (None, Some(m)) => Address {
            pincode: m.pincode.clone(),
            lat: None,
            lon: None,
        },
        (None, None) => Address {
            pincode: String::new(),
            lat: None,
            lon: None,
        },
    };
    let slot_day = Date::india_of(ask.slot.start);
    let (mut route, mut chosen) = match (&member, &policy) {
        (Some(_), Some(p)) => routing::decide(
            r,
            &RouteInput {
                services: ask.services,
                address: &address,
                slot: ask.slot,
                tried: ask.tried,
                allowed_tiers: &p.network_tiers,
            },
            &ask.weights,
            ask.attempt,
            ask.trigger,
            ask.now,
        )?,
        _ => (
            RouteChoice {
                attempt: ask.attempt,
                trigger: ask.trigger,
                decided_at: ask.now,
                provider_id: None,
                terms: None,
                candidates: Vec::new(),
                excluded: Vec::new(),
            },
            None,
        ),
    };
    if let Some(wanted) = ask.prefer {
        if let Some(pos) = route
            .candidates
            .iter()
            .position(|c| &c.provider_id == wanted)
        {
            let c = route.candidates.remove(pos);
            route.candidates.insert(0, c);
            chosen = r.get(&keys::one(table::PROVIDER, wanted.as_str().as_bytes()))?;
            route.provider_id = chosen
                .as_ref()
                .map(|p: &workflows::network::Provider| p.id.clone());
        }
    }
    let ledger = match (&member, &policy) {
        (Some(m), Some(p)) => Some(ledger_of(m, p, slot_day)),
        _ => None,
    };
    let mut usage = match (&policy, &ledger) {
        (Some(p), Some(l)) => usage_of(r, ask.partner, p, l)?,
        _ => BTreeMap::new(),
    };
    if let (Some(held), Some(l)) = (ask.holding, &ledger) {
        if held.cover_state == CoverState::Reserved && &held.ledger == l {
            for line in &held.cover {
                if let Some(u) = usage.get_mut(&line.benefit) {
                    eligibility::apply_move(u, eligibility::MoveKind::Release, 1, line.covered);
                }
            }
        }
    }
    let priced: Vec<PricedService> = catalog
        .iter()
        .map(|s| PricedService {
            code: s.code.clone(),
            category: s.category,
            gross: chosen
                .as_ref()
                .and_then(|p| p.services.get(&s.code).copied()),
        })
        .collect();
    let verdict = eligibility::evaluate(&Check {
        member: member.as_ref(),
        policy: policy.as_ref(),
        services: &priced,
        slot_day,
        network_ok: member.is_none() || chosen.is_some(),
        usage: &usage,
    });
    if let Some(p) = &chosen {
        route.terms = Some(ProviderTerms {
            accept_within: p.accept_within,
            fulfil_grace: p.fulfil_grace,
            amounts: Amounts {
                gross: verdict.gross(),
                covered: verdict.covered(),
                copay: verdict.copay(),
            },
            cover: verdict.lines.clone(),
        });
    }
    Ok(Assessment {
        verdict,
        route,
        member,
        policy,
        address,
        ledger,
        usage,
        report_tat,
    })
}

/// Remaining count and amount per benefit, for the dry run and the entitlements view.
pub fn remaining(policy: &Policy, usage: &BTreeMap<String, Usage>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for b in &policy.benefits {
        let key = benefit_key(b);
        let u = usage.get(&key).copied().unwrap_or_default();
        m.insert(
            key,
            serde_json::json!({
                "count_remaining": u.count_remaining(b),
                "amount_remaining_paise": u.amount_remaining(b).map(|p: Paise| p.0),
            }),
        );
    }
    serde_json::Value::Object(m)
}

/// A failure of the pipeline: the client's (unknown service) or the store's.
pub enum Fault {
    Api(ApiError),
    Store(store::Error),
}

impl From<store::Error> for Fault {
    fn from(e: store::Error) -> Fault {
        Fault::Store(e)
    }
}
