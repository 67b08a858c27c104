//! Eligibility rules, pricing and the entitlement ledger arithmetic, all pure.
//!
//! # Rounding
//! `covered = floor(gross × (100 − copay_percent) / 100)`, then capped by the per-visit cap and
//! by what is left of the annual limit; `copay = gross − covered`. Rounding down the covered
//! share means the member's copay takes any fractional paisa, never the insurer's budget.

use crate::ids::ServiceCode;
use crate::money::Paise;
use crate::network::ServiceCategory;
use crate::policy::{Benefit, BenefitScope, Member, Policy};
use crate::time::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Eligibility reason codes (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReasonCode {
    MemberNotFound,
    PolicyInactive,
    WaitingPeriod,
    RelationshipNotCovered,
    AgeNotCovered,
    ServiceNotCovered,
    CountLimitExhausted,
    AmountLimitExhausted,
    NetworkNotCovered,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MemberNotFound => "member_not_found",
            ReasonCode::PolicyInactive => "policy_inactive",
            ReasonCode::WaitingPeriod => "waiting_period",
            ReasonCode::RelationshipNotCovered => "relationship_not_covered",
            ReasonCode::AgeNotCovered => "age_not_covered",
            ReasonCode::ServiceNotCovered => "service_not_covered",
            ReasonCode::CountLimitExhausted => "count_limit_exhausted",
            ReasonCode::AmountLimitExhausted => "amount_limit_exhausted",
            ReasonCode::NetworkNotCovered => "network_not_covered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// The stable name of a benefit within its policy: `service:CBC` or `category:lab`.
pub fn benefit_key(b: &Benefit) -> String {
    match &b.scope {
        BenefitScope::Service(code) => format!("service:{code}"),
        BenefitScope::Category(c) => format!("category:{}", c.as_str()),
    }
}

/// The benefit that covers a service: by service code first, else by category.
pub fn benefit_for<'p>(
    policy: &'p Policy,
    code: &ServiceCode,
    category: ServiceCategory,
) -> Option<&'p Benefit> {
    policy
        .benefits
        .iter()
        .find(|b| b.scope == BenefitScope::Service(code.clone()))
        .or_else(|| {
            policy
                .benefits
                .iter()
                .find(|b| b.scope == BenefitScope::Category(category))
        })
}

/// The policy year containing `day`: it starts on an anniversary of `valid_from`.
pub fn policy_year(policy: &Policy, day: Date) -> (Date, Date) {
    let mut years = day.ymd().0 - policy.valid_from.ymd().0;
    let mut start = policy.valid_from.plus_years(years);
    while start > day && years > 0 {
        years -= 1;
        start = policy.valid_from.plus_years(years);
    }
    let end = policy.valid_from.plus_years(years + 1).plus_days(-1);
    (start, end)
}

/// Count and amount taken from one benefit in one policy year.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub count_used: u32,
    pub count_reserved: u32,
    pub amount_used: Paise,
    pub amount_reserved: Paise,
}

impl Usage {
    pub fn count_remaining(&self, b: &Benefit) -> Option<u32> {
        b.annual_count
            .map(|c| c.saturating_sub(self.count_used + self.count_reserved))
    }
    pub fn amount_remaining(&self, b: &Benefit) -> Option<Paise> {
        b.annual_limit
            .map(|l| Paise((l.0 - self.amount_used.0 - self.amount_reserved.0).max(0)))
    }
}

/// What a booking takes from one benefit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverLine {
    pub benefit: String,
    pub gross: Paise,
    pub covered: Paise,
    pub copay: Paise,
}

/// A ledger move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveKind {
    Reserve,
    Consume,
    Release,
}

impl MoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Reserve => "reserve",
            MoveKind::Consume => "consume",
            MoveKind::Release => "release",
        }
    }
}

/// Applies a move of `count` visits and `amount` to a usage row. Consume and release take
/// from the reservation; nothing ever goes below zero (asserted in debug builds).
pub fn apply_move(u: &mut Usage, kind: MoveKind, count: u32, amount: Paise) {
    match kind {
        MoveKind::Reserve => {
            u.count_reserved += count;
            u.amount_reserved = u.amount_reserved.saturating_add(amount);
        }
        MoveKind::Consume => {
            debug_assert!(u.count_reserved >= count && u.amount_reserved >= amount);
            u.count_reserved = u.count_reserved.saturating_sub(count);
            u.amount_reserved = Paise((u.amount_reserved.0 - amount.0).max(0));
            u.count_used += count;
            u.amount_used = u.amount_used.saturating_add(amount);
        }
        MoveKind::Release => {
            debug_assert!(u.count_reserved >= count && u.amount_reserved >= amount);
            u.count_reserved = u.count_reserved.saturating_sub(count);
            u.amount_reserved = Paise((u.amount_reserved.0 - amount.0).max(0));
        }
    }
}

/// One requested service with what the routed provider charges for it (`None` = no provider).
#[derive(Debug, Clone)]
pub struct PricedService {
    pub code: ServiceCode,
    pub category: ServiceCategory,
    pub gross: Option<Paise>,
}

/// Everything the rules look at.
pub struct Check<'a> {
    pub member: Option<&'a Member>,
    pub policy: Option<&'a Policy>,
    pub services: &'a [PricedService],
    pub slot_day: Date,
    /// Whether routing found a provider of an allowed tier.
    pub network_ok: bool,
    /// Usage per benefit key in the slot's policy year (this booking's own reservation
    /// already subtracted when re-pricing it).
    pub usage: &'a BTreeMap<String, Usage>,
}

/// The verdict: every failing reason, and the price split when eligible.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub reasons: Vec<Reason>,
    pub lines: Vec<CoverLine>,
}

impl Verdict {
    pub fn eligible(&self) -> bool {
        self.reasons.is_empty()
    }
    pub fn covered(&self) -> Paise {
        self.lines.iter().map(|l| l.covered).sum()
    }
    pub fn copay(&self) -> Paise {
        self.lines.iter().map(|l| l.copay).sum()
    }
    pub fn gross(&self) -> Paise {
        self.lines.iter().map(|l| l.gross).sum()
    }
}

fn push(reasons: &mut Vec<Reason>, code: ReasonCode, message: String) {
    if !reasons.iter().any(|r| r.code == code) {
        reasons.push(Reason { code, message });
    }
}

/// `floor(gross × (100 − copay) / 100)` capped by the visit cap and the remaining limit.
pub fn covered_share(b: &Benefit, gross: Paise, remaining: Option<Paise>) -> Paise {
    let share = gross.0 * (100 - b.copay_percent.min(100) as i64) / 100;
    let mut covered = share;
    if let Some(cap) = b.per_visit_cap {
        covered = covered.min(cap.0);
    }
    if let Some(rem) = remaining {
        covered = covered.min(rem.0);
    }
    Paise(covered.max(0))
}

/// Evaluates every rule and prices the booking.
pub fn evaluate(c: &Check<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let Some(member) = c.member else {
        push(
            &mut reasons,
            ReasonCode::MemberNotFound,
            "the member does not exist".into(),
        );
        return Verdict {
            reasons,
            lines: Vec::new(),
        };
    };
    let Some(policy) = c.policy else {
        push(
            &mut reasons,
            ReasonCode::PolicyInactive,
            format!("policy {} does not exist", member.policy_id),
        );
        return Verdict {
            reasons,
            lines: Vec::new(),
        };
    };
    if !policy.in_force_on(c.slot_day) {
        push(
            &mut reasons,
            ReasonCode::PolicyInactive,
            format!(
                "policy {} is in force {}..{}, not on {}",
                policy.id, policy.valid_from, policy.valid_to, c.slot_day
            ),
        );
    }
    if !c.network_ok {
        push(
            &mut reasons,
            ReasonCode::NetworkNotCovered,
            "no active provider of the policy's network serves this address with every service"
                .into(),
        );
    }
    let age = member.dob.years_until(c.slot_day);
    // Group services by benefit, in first-seen order.
    let mut groups: Vec<(&Benefit, Paise)> = Vec::new();
    for s in c.services {
        let Some(b) = benefit_for(policy, &s.code, s.category) else {
            push(
                &mut reasons,
                ReasonCode::ServiceNotCovered,
                format!("no benefit covers {}", s.code),
            );
            continue;
        };
        let gross = s.gross.unwrap_or_default();
        match groups.iter_mut().find(|(g, _)| std::ptr::eq(*g, b)) {
            Some((_, total)) => *total = total.saturating_add(gross),
            None => groups.push((b, gross)),
        }
    }
    let mut lines = Vec::new();
    for (b, gross) in groups {
        let key = benefit_key(b);
        let ready = member.enrolled_on.plus_days(b.waiting_period_days as i32);
        if c.slot_day < ready {
            push(
                &mut reasons,
                ReasonCode::WaitingPeriod,
                format!("{key}: the waiting period ends on {ready}"),
            );
        }
        if !b.relationships.contains(&member.relationship) {
            push(
                &mut reasons,
                ReasonCode::RelationshipNotCovered,
                format!(
                    "{key}: relationship {} is not covered",
                    member.relationship.as_str()
                ),
            );
        }
        let too_young = b.min_age.is_some_and(|m| age < m as i32);
        let too_old = b.max_age.is_some_and(|m| age > m as i32);
        if too_young || too_old {
            push(
                &mut reasons,
                ReasonCode::AgeNotCovered,
                format!(
                    "{key}: age {age} on {} is outside the covered ages",
                    c.slot_day
                ),
            );
        }
        let usage = c.usage.get(&key).copied().unwrap_or_default();
        if usage.count_remaining(b) == Some(0) {
            push(
                &mut reasons,
                ReasonCode::CountLimitExhausted,
                format!(
                    "{key}: all {} visits of the year are used or reserved",
                    b.annual_count.unwrap_or(0)
                ),
            );
        }
        let remaining = usage.amount_remaining(b);
        if remaining == Some(Paise::ZERO) {
            push(
                &mut reasons,
                ReasonCode::AmountLimitExhausted,
                format!("{key}: the annual limit is used up"),
            );
        }
        let covered = covered_share(b, gross, remaining);
        lines.push(CoverLine {
            benefit: key,
            gross,
            covered,
            copay: gross.saturating_sub(covered),
        });
    }
    reasons.sort_by_key(|r| r.code);
    Verdict { reasons, lines }
}

/// Splits `billed` over the lines in proportion to their gross (the last line takes the rest)
/// and returns, per line, the covered amount to consume: the line's coverage ratio applied to
/// its part of the bill, never more than was reserved. The rest of the reservation is released.
pub fn consumption(lines: &[CoverLine], billed: Paise) -> Vec<Paise> {
    let gross: i64 = lines.iter().map(|l| l.gross.0).sum();
    let billed = billed.0.max(0);
    let mut left = billed;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let part = if i + 1 == lines.len() || gross == 0 {
            left
        } else {
            (billed as i128 * line.gross.0 as i128 / gross as i128) as i64
        };
        left -= part;
        let consume = if line.gross.0 == 0 {
            0
        } else {
            (part as i128 * line.covered.0 as i128 / line.gross.0 as i128) as i64
        };
        out.push(Paise(consume.min(line.covered.0).max(0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{MemberId, PartnerId, PolicyId};
    use crate::policy::Relationship;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn benefit() -> Benefit {
        Benefit {
            scope: BenefitScope::Category(ServiceCategory::Lab),
            annual_limit: Some(Paise(100_000)),
            annual_count: Some(2),
            per_visit_cap: None,
            copay_percent: 20,
            waiting_period_days: 30,
            relationships: vec![Relationship::SelfMember],
            min_age: Some(18),
            max_age: Some(60),
        }
    }

    fn policy(b: Benefit) -> Policy {
        Policy {
            partner_id: PartnerId::parse("p").unwrap(),
            id: PolicyId::parse("pol").unwrap(),
            valid_from: Date::parse("2026-03-15").unwrap(),
            valid_to: Date::parse("2030-03-14").unwrap(),
            floater: false,
            network_tiers: vec![],
            benefits: vec![b],
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn member() -> Member {
        Member {
            partner_id: PartnerId::parse("p").unwrap(),
            id: MemberId::parse("m").unwrap(),
            policy_id: PolicyId::parse("pol").unwrap(),
            relationship: Relationship::SelfMember,
            dob: Date::parse("1990-01-01").unwrap(),
            gender: "F".into(),
            pincode: "560001".into(),
            name: "M".into(),
            phone: "".into(),
            enrolled_on: Date::parse("2026-03-15").unwrap(),
            family_id: MemberId::parse("m").unwrap(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn cbc(gross: i64) -> Vec<PricedService> {
        vec![PricedService {
            code: ServiceCode::parse("CBC").unwrap(),
            category: ServiceCategory::Lab,
            gross: Some(Paise(gross)),
        }]
    }

    fn run(
        p: &Policy,
        m: &Member,
        day: &str,
        usage: &BTreeMap<String, Usage>,
        gross: i64,
    ) -> Verdict {
        evaluate(&Check {
            member: Some(m),
            policy: Some(p),
            services: &cbc(gross),
            slot_day: Date::parse(day).unwrap(),
            network_ok: true,
            usage,
        })
    }

    #[test]
    fn copay_and_caps_split_the_gross() {
        let p = policy(benefit());
        let v = run(&p, &member(), "2026-06-01", &BTreeMap::new(), 40_000);
        assert!(v.eligible(), "{v:?}");
        assert_eq!((v.covered(), v.copay()), (Paise(32_000), Paise(8_000)));
        let mut capped = benefit();
        capped.per_visit_cap = Some(Paise(25_000));
        let v = run(
            &policy(capped),
            &member(),
            "2026-06-01",
            &BTreeMap::new(),
            40_000,
        );
        assert_eq!((v.covered(), v.copay()), (Paise(25_000), Paise(15_000)));
        let mut usage = BTreeMap::new();
        usage.insert(
            "category:lab".to_string(),
            Usage {
                amount_used: Paise(90_000),
                ..Usage::default()
            },
        );
        let v = run(&p, &member(), "2026-06-01", &usage, 40_000);
        assert!(v.eligible());
        assert_eq!((v.covered(), v.copay()), (Paise(10_000), Paise(30_000)));
        // Fractions of a paisa go to the copay.
        let v = run(&p, &member(), "2026-06-01", &BTreeMap::new(), 999);
        assert_eq!((v.covered(), v.copay()), (Paise(799), Paise(200)));
    }

    #[test]
    fn every_failing_rule_is_reported() {
        let mut m = member();
        m.relationship = Relationship::Parent;
        m.dob = Date::parse("1950-01-01").unwrap();
        let mut usage = BTreeMap::new();
        usage.insert(
            "category:lab".to_string(),
            Usage {
                count_used: 2,
                amount_used: Paise(100_000),
                ..Usage::default()
            },
        );
        let v = evaluate(&Check {
            member: Some(&m),
            policy: Some(&policy(benefit())),
            services: &cbc(1000),
            slot_day: Date::parse("2026-04-01").unwrap(),
            network_ok: false,
            usage: &usage,
        });
        let codes: Vec<_> = v.reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "waiting_period",
                "relationship_not_covered",
                "age_not_covered",
                "count_limit_exhausted",
                "amount_limit_exhausted",
                "network_not_covered"
            ]
        );
        let v = run(
            &policy(benefit()),
            &member(),
            "2031-01-01",
            &BTreeMap::new(),
            1,
        );
        assert_eq!(v.reasons[0].code, ReasonCode::PolicyInactive);
        let no_benefit = Policy {
            benefits: vec![],
            ..policy(benefit())
        };
        let v = run(&no_benefit, &member(), "2026-06-01", &BTreeMap::new(), 1);
        assert_eq!(v.reasons[0].code, ReasonCode::ServiceNotCovered);
    }

    #[test]
    fn consumption_follows_the_bill() {
        let lines = vec![
            CoverLine {
                benefit: "a".into(),
                gross: Paise(40_000),
                covered: Paise(32_000),
                copay: Paise(8_000),
            },
            CoverLine {
                benefit: "b".into(),
                gross: Paise(10_000),
                covered: Paise(10_000),
                copay: Paise(0),
            },
        ];
        assert_eq!(
            consumption(&lines, Paise(50_000)),
            vec![Paise(32_000), Paise(10_000)]
        );
        assert_eq!(
            consumption(&lines, Paise(25_000)),
            vec![Paise(16_000), Paise(5_000)]
        );
        assert_eq!(
            consumption(&lines, Paise(90_000)),
            vec![Paise(32_000), Paise(10_000)]
        );
    }

    #[test]
    fn policy_years_run_from_valid_from_anniversaries() {
        let p = policy(benefit());
        let y = |d: &str| {
            let (a, b) = policy_year(&p, Date::parse(d).unwrap());
            (a.to_string(), b.to_string())
        };
        assert_eq!(y("2026-03-15"), ("2026-03-15".into(), "2027-03-14".into()));
        assert_eq!(y("2027-03-14"), ("2026-03-15".into(), "2027-03-14".into()));
        assert_eq!(y("2027-03-15"), ("2027-03-15".into(), "2028-03-14".into()));
        assert_eq!(y("2028-01-01"), ("2027-03-15".into(), "2028-03-14".into()));
    }

    proptest! {
        /// Random reserve / consume / release / cancel sequences: used + reserved never
        /// exceeds the limit, and every reservation ends consumed or released exactly once.
        #[test]
        fn the_ledger_never_overspends(ops in proptest::collection::vec((0u8..4, 1i64..60_000), 0..60)) {
            let b = Benefit { annual_limit: Some(Paise(100_000)), annual_count: Some(3), waiting_period_days: 0, min_age: None, max_age: None, ..benefit() };
            let p = policy(b.clone());
            let m = member();
            let mut usage = Usage::default();
            let mut open: Vec<CoverLine> = Vec::new();
            let mut closed = 0usize;
            let mut reserved_total = 0usize;
            for (op, gross) in ops {
                let mut map = BTreeMap::new();
                map.insert("category:lab".to_string(), usage);
                match op {
                    0 | 1 => {
                        let v = run(&p, &m, "2026-06-01", &map, gross);
                        if v.eligible() {
                            let line = v.lines[0].clone();
                            apply_move(&mut usage, MoveKind::Reserve, 1, line.covered);
                            open.push(line);
                            reserved_total += 1;
                        }
                    }
                    2 if !open.is_empty() => {
                        let line = open.remove(0);
                        let consume = consumption(std::slice::from_ref(&line), Paise(gross))[0];
                        prop_assert!(consume <= line.covered);
                        apply_move(&mut usage, MoveKind::Consume, 1, consume);
                        apply_move(&mut usage, MoveKind::Release, 0, line.covered.saturating_sub(consume));
                        closed += 1;
                    }
                    _ if !open.is_empty() => {
                        let line = open.pop().unwrap();
                        apply_move(&mut usage, MoveKind::Release, 1, line.covered);
                        closed += 1;
                    }
                    _ => {}
                }
                prop_assert!(usage.amount_used.0 + usage.amount_reserved.0 <= 100_000);
                prop_assert!(usage.count_used + usage.count_reserved <= 3);
                prop_assert_eq!(usage.count_reserved as usize, open.len());
                prop_assert_eq!(usage.amount_reserved, open.iter().map(|l| l.covered).sum::<Paise>());
            }
            prop_assert_eq!(closed + open.len(), reserved_total);
        }
    }
}
