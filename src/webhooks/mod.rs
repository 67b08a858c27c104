//! Outbound webhooks: endpoints, the transactional outbox's records, Standard Webhooks
//! signatures, URL rules (no SSRF), and the dispatcher (`dispatcher.rs`).

pub mod dispatcher;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use workflows::{PartnerId, Timestamp};

/// How long a replaced secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;
/// Bytes of a response body kept with an attempt.
pub const RESPONSE_SNIPPET_MAX: usize = 1024;

/// A signing secret, `whsec_<base64>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    pub created_at: Timestamp,
    /// Set when a newer secret replaced it; it signs until then.
    pub expires_at: Option<Timestamp>,
}

/// A partner's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub partner_id: PartnerId,
    pub id: String,
    pub url: String,
    /// Event types, or `*` for all.
    pub events: Vec<String>,
    /// Newest first.
    pub secrets: Vec<Secret>,
    /// Why deliveries stopped (e.g. the receiver answered 410 Gone).
    pub disabled: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Endpoint {
    pub fn wants(&self, event: &str) -> bool {
        self.disabled.is_none() && self.events.iter().any(|e| e == "*" || e == event)
    }

    /// Secrets that sign at `now`: the current one and any replaced less than 24 h ago.
    pub fn signing_secrets(&self, now: Timestamp) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|e| e > now))
            .map(|s| s.secret.as_str())
    }
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub response: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
}

/// One event for one endpoint: the outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Also the `webhook-id` header: stable across retries, so receivers can de-duplicate.
    pub id: uuid::Uuid,
    pub partner_id: PartnerId,
    pub endpoint_id: String,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    /// The booking (or case) the event is about; deliveries of one subject go in order.
    pub subject: uuid::Uuid,
    pub booking_id: Option<uuid::Uuid>,
    /// The exact JSON body sent, fixed at commit time.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    pub fn view(&self) -> serde_json::Value {
        use crate::clock::rfc3339;
        serde_json::json!({
            "id": self.id.to_string(),
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id.to_string(),
            "event": self.event_type,
            "type": self.event_type,
            "booking_id": self.booking_id.map(|b| b.to_string()),
            "status": self.status.as_str(),
            "next_attempt_at": self.next_attempt_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "attempts": self.attempts.iter().map(|a| serde_json::json!({
                "at": rfc3339(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response": a.response,
            })).collect::<Vec<_>>(),
            "payload": serde_json::from_str::<serde_json::Value>(&self.body).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// A new `whsec_` secret (32 random bytes).
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Whether `s` is a usable secret: `whsec_` + base64 of at least 16 bytes.
pub fn valid_secret(s: &str) -> bool {
    s.strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|k| k.len() >= 16 && k.len() <= 128)
}

/// `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` (Standard Webhooks).
pub fn sign(secret: &str, msg_id: &str, timestamp_s: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Why a URL may not receive webhooks, if it may not: `https` only (except listed hosts), and
/// no private, loopback, link-local or unspecified addresses unless listed (no SSRF).
pub fn url_problem(url: &str, allow_http_hosts: &[String]) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Some(format!("not a URL: {e}")),
    };
    let Some(host) = parsed.host_str() else {
        return Some("the URL has no host".into());
    };
    let host_clean = host.trim_start_matches('[').trim_end_matches(']');
    let listed = allow_http_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host_clean));
    match parsed.scheme() {
        "https" => {}
        "http" if listed => {}
        "http" => {
            return Some(format!(
                "http is allowed only for {allow_http_hosts:?}; use https"
            ))
        }
        other => return Some(format!("scheme {other} is not allowed; use https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("credentials in the URL are not allowed".into());
    }
    if listed {
        return None;
    }
    if host_clean.eq_ignore_ascii_case("localhost") || host_clean.ends_with(".localhost") {
        return Some("localhost is not allowed".into());
    }
    if let Ok(ip) = host_clean.parse::<IpAddr>() {
        let private = match ip {
            IpAddr::V4(v4) => {
                v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4.is_multicast()
                    || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
                    || v4.octets()[0] == 0
            }
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6.to_ipv4_mapped().is_some()
            }
        };
        if private {
            return Some(format!("{ip} is a private, loopback or link-local address"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_rules() {
        let allow = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        assert_eq!(url_problem("https://hooks.example.com/x", &allow), None);
        assert_eq!(url_problem("http://127.0.0.1:9000/h", &allow), None);
        assert!(url_problem("http://example.com/x", &allow).is_some());
        assert!(url_problem("https://10.0.0.1/x", &allow).is_some());
        assert!(url_problem("http://10.0.0.1/x", &allow).is_some());
        assert!(url_problem("https://169.254.169.254/latest", &allow).is_some());
        assert!(url_problem("https://[::1]/x", &allow).is_some());
        assert!(url_problem("https://192.168.1.5/x", &[]).is_some());
        assert!(url_problem("ftp://example.com/x", &allow).is_some());
    }

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }
}
