//! Policies, their benefits, and members.

use crate::ids::{MemberId, PartnerId, PolicyId, ServiceCode};
use crate::money::Paise;
use crate::network::ServiceCategory;
use crate::time::{Date, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Relationship {
    SelfMember,
    Spouse,
    Child,
    Parent,
}

impl Relationship {
    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::SelfMember => "self",
            Relationship::Spouse => "spouse",
            Relationship::Child => "child",
            Relationship::Parent => "parent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SelfMember, Self::Spouse, Self::Child, Self::Parent]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// What a benefit covers: one service, or a whole category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BenefitScope {
    Service(ServiceCode),
    Category(ServiceCategory),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benefit {
    pub scope: BenefitScope,
    pub annual_limit: Option<Paise>,
    pub annual_count: Option<u32>,
    pub per_visit_cap: Option<Paise>,
    pub copay_percent: u8,
    pub waiting_period_days: u32,
    pub relationships: Vec<Relationship>,
    pub min_age: Option<u32>,
    pub max_age: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub partner_id: PartnerId,
    pub id: PolicyId,
    pub valid_from: Date,
    pub valid_to: Date,
    pub floater: bool,
    pub network_tiers: Vec<String>,
    pub benefits: Vec<Benefit>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Policy {
    /// Whether the policy is in force on `day` (both ends inclusive).
    pub fn in_force_on(&self, day: Date) -> bool {
        self.valid_from <= day && day <= self.valid_to
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub partner_id: PartnerId,
    pub id: MemberId,
    pub policy_id: PolicyId,
    pub relationship: Relationship,
    pub dob: Date,
    pub gender: String,
    pub pincode: String,
    pub name: String,
    pub phone: String,
    pub enrolled_on: Date,
    pub family_id: MemberId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
