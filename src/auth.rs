//! API keys and the principals they stand for.
//!
//! A key is shown once, at creation; only its SHA-256 is stored. A key has 256 bits of
//! entropy, so a plain hash (no salt, no stretching) is enough and lookups stay O(1).

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::audit::Actor;
use workflows::network::OperatorRole;
use workflows::{OperatorId, PartnerId, ProviderId};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Partner(PartnerId),
    Provider(ProviderId),
    Operator(OperatorId, OperatorRole),
    /// The service itself: timers and cron jobs.
    System(&'static str),
}

impl Principal {
    /// The idempotency-key scope of this caller.
    pub fn scope(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Partner(p) => format!("partner:{p}"),
            Principal::Provider(p) => format!("provider:{p}"),
            Principal::Operator(o, _) => format!("operator:{o}"),
            Principal::System(s) => format!("system:{s}"),
        }
    }

    pub fn actor(&self) -> Actor {
        let (kind, id, role) = match self {
            Principal::Admin => ("admin", "admin".to_string(), None),
            Principal::Partner(p) => ("partner", p.to_string(), None),
            Principal::Provider(p) => ("provider", p.to_string(), None),
            Principal::Operator(o, r) => ("operator", o.to_string(), Some(r.as_str().to_string())),
            Principal::System(s) => ("system", s.to_string(), None),
        };
        Actor {
            kind: kind.into(),
            id,
            role,
        }
    }
}

/// Whose key it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOwner {
    Partner(PartnerId),
    Provider(ProviderId),
    Operator(OperatorId),
}

impl KeyOwner {
    pub fn kind(&self) -> &'static str {
        match self {
            KeyOwner::Partner(_) => "partner",
            KeyOwner::Provider(_) => "provider",
            KeyOwner::Operator(_) => "operator",
        }
    }
    pub fn id(&self) -> &str {
        match self {
            KeyOwner::Partner(p) => p.as_str(),
            KeyOwner::Provider(p) => p.as_str(),
            KeyOwner::Operator(o) => o.as_str(),
        }
    }
}

/// A stored key (the hash is the record's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: String,
    pub owner: KeyOwner,
    pub created_at: workflows::Timestamp,
}

/// A new random key, `dxk_<43 base64url chars>`.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "dxk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Compares two secrets without leaking where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (ha, hb) = (hash_key(a), hash_key(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
