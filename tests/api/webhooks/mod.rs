//! Webhooks end to end: a real receiver on loopback (`receiver.py`, a Python process) verifies
//! every request it gets with the `standardwebhooks` package — independently of DxStack's own
//! signing code — logs it, and answers per a plan ("fail the first two", "always 410", ...).
//!
//! Tests: a booking's life in order, event filters, 410 Gone and prompt dispatch
//! ([`delivery`]); retries, per-booking order, dead letters and replay ([`retries`]); secret
//! rotation, URL rules and partner isolation ([`security`]); the outbox surviving SIGKILL
//! ([`crash`]).

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{eventually, str_of, Partner, Resp, TestApp, World};

mod crash;
mod delivery;
mod retries;
mod security;

/// The receiver script, next to this file.
const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/webhooks/receiver.py"
);

/// Retries after 300 ms twice (±10 %): three attempts in all, then dead.
pub(crate) const FAST_RETRIES: &str = "[webhooks]\nretry_schedule = [\"300ms\", \"300ms\"]\n";

/// How long a test waits for deliveries that should come within a second or so.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A booking's events from creation to completion, in commit order.
pub(crate) const LIFE: [&str; 4] = [
    "booking.created",
    "booking.confirmed",
    "booking.in_progress",
    "booking.completed",
];

/// One request the receiver got, as it logged it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Hit {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) path: String,
    pub(crate) webhook_id: String,
    pub(crate) webhook_timestamp: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) signatures: Vec<String>,
    /// The request verifies (standardwebhooks) with one of the path's secrets.
    pub(crate) verified: bool,
    /// Per configured secret: the whole request verifies with it.
    pub(crate) verified_by: Vec<bool>,
    /// Per signature, per secret: the request with only that signature verifies.
    pub(crate) sig_valid: Vec<Vec<bool>>,
    pub(crate) error: Option<String>,
    /// What the receiver answered.
    pub(crate) status: u16,
    /// 0 for the first request with this `webhook-id` on this path, then 1, 2, ...
    pub(crate) attempt: u32,
    #[serde(rename = "type")]
    pub(crate) event_type: Option<String>,
    pub(crate) event_id: Option<String>,
    pub(crate) partner_id: Option<String>,
    pub(crate) occurred_at: Option<String>,
    /// `data.id` of the body.
    pub(crate) booking_id: Option<String>,
    /// `data.state` of the body.
    pub(crate) state: Option<String>,
    pub(crate) body: String,
}

impl Hit {
    pub(crate) fn ty(&self) -> &str {
        self.event_type.as_deref().unwrap_or("<no type>")
    }

    pub(crate) fn booking(&self) -> &str {
        self.booking_id.as_deref().unwrap_or("<no data.id>")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {}", self.body))
    }
}

/// A running `receiver.py`; killed when dropped.
pub(crate) struct Receiver {
    pub(crate) port: u16,
    client: reqwest::Client,
    _child: Child,
}

impl Receiver {
    /// A receiver on a free port, answering 200 to everything, with no secrets yet.
    pub(crate) async fn start() -> Receiver {
        Receiver::start_with(0, &json!({})).await
    }

    /// A receiver on `port` (0 = any) configured with `config` (the `/_control` JSON) before
    /// it accepts its first request.
    pub(crate) async fn start_with(port: u16, config: &Value) -> Receiver {
        let mut child = Command::new("python3")
            .arg(RECEIVER)
            .arg("--port")
            .arg(port.to_string())
            .arg("--config")
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3 receiver.py (is python3 installed?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .expect("receiver.py printed nothing within 15 s")
            .expect("read receiver stdout")
            .unwrap_or_else(|| {
                panic!("receiver.py exited before listening (is `standardwebhooks` installed?)")
            });
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from receiver.py: {line:?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build reqwest client");
        Receiver {
            port,
            client,
            _child: child,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) async fn configure(&self, config: &Value) {
        let r = self
            .client
            .post(self.url("/_control"))
            .json(config)
            .send()
            .await
            .expect("POST /_control to the receiver");
        assert!(
            r.status().is_success(),
            "receiver /_control: {}",
            r.status()
        );
    }

    /// The secrets requests to `path` are verified with (in this order).
    pub(crate) async fn set_secrets(&self, path: &str, secrets: &[&str]) {
        self.configure(&json!({ "secrets": { path: secrets } }))
            .await;
    }

    /// Requests to `path`: the k-th with one `webhook-id` gets `first[k]`, later ones `then`.
    pub(crate) async fn set_plan(&self, path: &str, first: &[u16], then: u16) {
        self.configure(&json!({ "plans": { path: { "first": first, "then": then } } }))
            .await;
    }

    /// Every request so far, oldest first.
    pub(crate) async fn hits(&self) -> Vec<Hit> {
        let r = self
            .client
            .get(self.url("/_log"))
            .send()
            .await
            .expect("GET /_log from the receiver");
        r.json().await.expect("receiver /_log is a JSON array")
    }

    /// Every request to `path` so far, oldest first.
    pub(crate) async fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.hits()
            .await
            .into_iter()
            .filter(|h| h.path == path)
            .collect()
    }

    /// Polls until the requests to `path` satisfy `done`; returns them.
    pub(crate) async fn wait_on(
        &self,
        what: &str,
        path: &str,
        done: impl Fn(&[Hit]) -> bool,
    ) -> Vec<Hit> {
        let done = &done;
        eventually(what, WAIT, || async move {
            let hits = self.hits_on(path).await;
            done(&hits).then_some(hits)
        })
        .await
    }
}

/// A port nothing listens on (bound once, then released).
pub(crate) fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Asserts every request verified with the path's secrets, with a `msg_` id and a timestamp.
#[track_caller]
pub(crate) fn assert_all_verified(hits: &[Hit]) {
    for h in hits {
        assert!(
            h.verified,
            "request #{} to {} ({} {}) did not verify with standardwebhooks: {:?}\nsignatures {:?}\nbody {}",
            h.seq,
            h.path,
            h.ty(),
            h.webhook_id,
            h.error,
            h.signatures,
            h.body
        );
        assert!(
            h.webhook_id.starts_with("msg_"),
            "webhook-id {:?} does not start with msg_",
            h.webhook_id
        );
        assert!(
            h.webhook_timestamp.is_some(),
            "request #{} without webhook-timestamp",
            h.seq
        );
    }
}

pub(crate) async fn put_endpoint(
    app: &TestApp,
    key: &str,
    id: &str,
    url: &str,
    events: &[&str],
    secret: Option<&str>,
) -> Resp {
    let mut body = json!({ "url": url, "events": events });
    if let Some(s) = secret {
        body["secret"] = json!(s);
    }
    app.put(&format!("/v1/webhook-endpoints/{id}"), key, &body)
        .await
}

/// Creates an endpoint (asserts 201 and a `whsec_` secret) and returns its secret.
pub(crate) async fn create_endpoint(
    app: &TestApp,
    key: &str,
    id: &str,
    url: &str,
    events: &[&str],
) -> String {
    let body = put_endpoint(app, key, id, url, events, None).await.ok(201);
    let secret = str_of(&body["secret"]);
    assert!(
        secret.starts_with("whsec_"),
        "endpoint secret {secret:?} is not whsec_..."
    );
    secret
}

pub(crate) async fn get_endpoint(app: &TestApp, key: &str, id: &str) -> Resp {
    app.get(&format!("/v1/webhook-endpoints/{id}"), Some(key))
        .await
}

/// `GET /v1/webhook-deliveries?{query}&limit=1000` → its items.
pub(crate) async fn deliveries(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let body = app
        .get(
            &format!("/v1/webhook-deliveries?limit=1000&{query}"),
            Some(key),
        )
        .await
        .ok(200);
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("deliveries without an items array: {body}"))
        .clone()
}

/// Polls the deliveries matching `query` until `done` holds; returns them.
pub(crate) async fn wait_deliveries(
    app: &TestApp,
    key: &str,
    what: &str,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let done = &done;
    eventually(what, WAIT, || async move {
        let items = deliveries(app, key, query).await;
        done(&items).then_some(items)
    })
    .await
}

/// The attempts' status codes of a delivery (`None` for transport errors).
pub(crate) fn attempt_codes(d: &Value) -> Vec<Option<u64>> {
    d["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("delivery without attempts array: {d}"))
        .iter()
        .map(|a| a["status_code"].as_u64())
        .collect()
}

/// Creates a booking for `pa.members[n]`; returns its id and the routed provider's key.
pub(crate) async fn book(
    app: &TestApp,
    w: &World,
    pa: &Partner,
    n: usize,
    r: &str,
) -> (String, String) {
    let b = app.create_booking(&pa.key, &pa.booking(n, r)).await.ok(201);
    let id = str_of(&b["id"]);
    let provider = str_of(&b["provider_id"]);
    (id, w.provider(&provider).key.clone())
}

/// A provider event that must succeed (200); returns the booking.
pub(crate) async fn step(app: &TestApp, provider_key: &str, booking: &str, event: &str) -> Value {
    app.provider_event(provider_key, booking, event)
        .await
        .ok(200)
}
