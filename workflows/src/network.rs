//! The provider network and the service catalog, as plain values.

use crate::ids::{PartnerId, ProviderId, ServiceCode};
use crate::money::Paise;
use crate::time::{Millis, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceCategory {
    Lab,
    Consultation,
    Pharmacy,
}

impl ServiceCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceCategory::Lab => "lab",
            ServiceCategory::Consultation => "consultation",
            ServiceCategory::Pharmacy => "pharmacy",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Lab, Self::Consultation, Self::Pharmacy]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogService {
    pub code: ServiceCode,
    pub name: String,
    pub category: ServiceCategory,
    pub report_tat: Millis,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    Lab,
    Clinic,
    Pharmacy,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Lab => "lab",
            ProviderKind::Clinic => "clinic",
            ProviderKind::Pharmacy => "pharmacy",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Lab, Self::Clinic, Self::Pharmacy]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Great-circle distance in kilometres (haversine, mean Earth radius).
    pub fn distance_km(self, other: GeoPoint) -> f64 {
        Spot::of(self).distance_km(&Spot::of(other))
    }
}

/// A point with the parts of the haversine that depend on it alone computed once, for code
/// that measures from the same points many times. Gives exactly [`GeoPoint::distance_km`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spot {
    lat_rad: f64,
    cos_lat: f64,
    lon: f64,
}

impl Spot {
    pub fn of(p: GeoPoint) -> Spot {
        let lat_rad = p.lat.to_radians();
        Spot {
            lat_rad,
            cos_lat: lat_rad.cos(),
            lon: p.lon,
        }
    }

    pub fn distance_km(&self, other: &Spot) -> f64 {
        let dla = other.lat_rad - self.lat_rad;
        let dlo = (other.lon - self.lon).to_radians();
        let a =
            (dla / 2.0).sin().powi(2) + self.cos_lat * other.cos_lat * (dlo / 2.0).sin().powi(2);
        2.0 * 6_371.0 * a.sqrt().asin()
    }
}

/// Minutes after midnight (India time), `[open, close)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRange {
    pub open_min: u16,
    pub close_min: u16,
}

/// A contracted provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub name: String,
    pub kind: ProviderKind,
    pub network_tier: String,
    pub location: GeoPoint,
    pub pincode: String,
    pub serviceable_pincodes: Vec<String>,
    pub radius_km: f64,
    pub services: BTreeMap<ServiceCode, Paise>,
    pub daily_capacity: u32,
    pub accept_within: Millis,
    pub fulfil_grace: Millis,
    pub quality_score: f64,
    pub active: bool,
    /// Opening hours per weekday (0 = Monday); `None` = always open.
    pub open_hours: Option<[Vec<OpenRange>; 7]>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Provider {
    pub fn offers_all(&self, services: &[ServiceCode]) -> bool {
        services.iter().all(|s| self.services.contains_key(s))
    }

    /// Gross price of `services` at this provider's contract rates.
    pub fn gross(&self, services: &[ServiceCode]) -> Paise {
        services
            .iter()
            .filter_map(|s| self.services.get(s).copied())
            .sum()
    }
}

/// A partner (tenant) with its white-label settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub branding: Branding,
    pub sso: Sso,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Branding {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub accent_color: Option<String>,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sso {
    pub hs256_secret: Option<String>,
    pub rs256_public_key_pem: Option<String>,
    pub allowed_return_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperatorRole {
    Agent,
    Supervisor,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Agent => "agent",
            OperatorRole::Supervisor => "supervisor",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Agent, Self::Supervisor]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub id: crate::ids::OperatorId,
    pub name: String,
    pub role: OperatorRole,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bengaluru_to_mumbai_is_about_840_km() {
        let blr = GeoPoint {
            lat: 12.97,
            lon: 77.59,
        };
        let bom = GeoPoint {
            lat: 18.93,
            lon: 72.83,
        };
        let d = blr.distance_km(bom);
        assert!((830.0..850.0).contains(&d), "{d}");
    }
}
