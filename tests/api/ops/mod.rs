//! Exception handling, governed operator actions and the audit chain, black-box.
//!
//! - [`cases`]: an SLA-breach case walked acknowledge → escalate → resolve (history, assignee,
//!   severity, refusals), reasons required, auto-escalation after `[exceptions] ack_within`.
//! - [`approvals`]: roles (an agent may not waive or force), four-eyes approvals of
//!   `waive_copay` and `force_transition` to `completed`, the waiver's amounts and ledger,
//!   rejection.
//! - [`actions`]: `reassign` (next and given provider) and `extend_sla` (due moves, the breach
//!   fires only after the new due).
//! - [`chain`]: the exported chain re-hashed by an independent Python verifier
//!   (`verify_chain.py`), then one stored entry tampered with underneath the stopped server and
//!   found by `GET /v1/ops/audit/verify`, `dxstack audit verify --store` and `--file`.
//! - [`trail`]: a booking's whole life (create, SLA at-risk timer, accept, operator action,
//!   personal-data reads, started, completed, webhook deliveries) as audit entries, in order.
//!
//! Each test runs its own server. Operators: `ops-agent` (agent), `ops-sup-1` and `ops-sup-2`
//! (supervisors).

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, Resp, TestApp, World, BLR_FULL};

mod actions;
mod approvals;
mod cases;
mod chain;
mod trail;

pub(crate) const AGENT: &str = "ops-agent";
pub(crate) const SUP1: &str = "ops-sup-1";
pub(crate) const SUP2: &str = "ops-sup-2";

/// Switches re-routing on an acceptance breach off, so a breached booking stays put.
pub(crate) const NO_REROUTE: &str = "[sla]\nreroute_on_acceptance_breach = false\n";

/// A server, the standard world and three operators with their keys.
pub(crate) struct Ops {
    pub(crate) app: TestApp,
    pub(crate) w: World,
    pub(crate) agent: String,
    pub(crate) sup1: String,
    pub(crate) sup2: String,
}

impl Ops {
    /// A server with the test config merged with `extra_toml`, the standard world, and the
    /// operators.
    pub(crate) async fn start(extra_toml: &str) -> Ops {
        let app = TestApp::spawn_with(extra_toml).await;
        Ops::on(app).await
    }

    /// The world and the operators on an already running server.
    pub(crate) async fn on(app: TestApp) -> Ops {
        let w = World::build(&app).await;
        let agent = app.operator_key(AGENT, "agent").await;
        let sup1 = app.operator_key(SUP1, "supervisor").await;
        let sup2 = app.operator_key(SUP2, "supervisor").await;
        Ops {
            app,
            w,
            agent,
            sup1,
            sup2,
        }
    }

    /// Gives both `blr-lab-*` providers (the only candidates of a CBC + LIPID booking at
    /// 560001) this acceptance window.
    pub(crate) async fn set_accept_within(&self, accept_within: &str) {
        for id in BLR_FULL {
            World::reconfigure_provider(&self.app, id, |b| {
                b["sla"]["accept_within"] = json!(accept_within);
            })
            .await;
        }
    }

    /// Creates `members[n]`'s CBC + LIPID booking (asserts 201) and returns it.
    pub(crate) async fn book(&self, n: usize, partner_ref: &str) -> Value {
        let pa = &self.w.partner;
        self.app
            .create_booking(&pa.key, &pa.booking(n, partner_ref))
            .await
            .ok(201)
    }

    /// The partner's view of a booking (asserts 200).
    pub(crate) async fn booking(&self, id: &str) -> Value {
        self.app.get_booking(&self.w.partner.key, id).await.ok(200)
    }

    /// The key of provider `id`.
    pub(crate) fn provider_key(&self, id: &str) -> &str {
        &self.w.provider(id).key
    }
}

// ---- time: the harness's clock helpers, for the submodules ------------------------------------

pub(crate) use crate::harness::{assert_within, ms, now_ms, sleep_until_ms};

// ---- bookings -------------------------------------------------------------------------------

/// The booking's only SLA entry of `kind`.
#[track_caller]
pub(crate) fn sla_entry<'a>(b: &'a Value, kind: &str) -> &'a Value {
    let es: Vec<&Value> = b["sla"]
        .as_array()
        .unwrap_or_else(|| panic!("booking without an `sla` array: {b}"))
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect();
    assert_eq!(es.len(), 1, "expected one {kind} SLA entry: {}", b["sla"]);
    es[0]
}

/// Polls the partner's view of booking `id` until `done` holds; returns it.
pub(crate) async fn wait_booking(
    ops: &Ops,
    id: &str,
    what: &str,
    deadline: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, deadline, || async {
        let b = ops.booking(id).await;
        done(&b).then_some(b)
    })
    .await
}

// ---- operator routes ------------------------------------------------------------------------

impl Ops {
    /// `POST /v1/ops/exceptions/{id}/{verb}` with `body`.
    pub(crate) async fn case_verb(&self, key: &str, case: &str, verb: &str, body: &Value) -> Resp {
        self.app
            .post(&format!("/v1/ops/exceptions/{case}/{verb}"), key, body)
            .await
    }

    /// `GET /v1/ops/exceptions/{id}` (asserts 200).
    pub(crate) async fn case(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/ops/exceptions/{id}"), Some(&self.agent))
            .await
            .ok(200)
    }

    /// The cases of a booking (`GET /v1/ops/exceptions?booking_id=`).
    pub(crate) async fn cases_of(&self, booking: &str) -> Vec<Value> {
        let r = self
            .app
            .get(
                &format!("/v1/ops/exceptions?booking_id={booking}"),
                Some(&self.agent),
            )
            .await
            .ok(200);
        items(&r)
    }

    /// `POST /v1/ops/bookings/{id}/actions` with `body`.
    pub(crate) async fn action(&self, key: &str, booking: &str, body: &Value) -> Resp {
        self.app
            .post(&format!("/v1/ops/bookings/{booking}/actions"), key, body)
            .await
    }

    /// `POST /v1/ops/approvals/{id}/{approve|reject}` with `body`.
    pub(crate) async fn decide(&self, key: &str, approval: &str, verb: &str, body: &Value) -> Resp {
        self.app
            .post(&format!("/v1/ops/approvals/{approval}/{verb}"), key, body)
            .await
    }

    /// Every audit entry matching `query` (`target_id=…&action=…`), following
    /// `next_from_seq` to the end.
    pub(crate) async fn audit(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut from = 1_u64;
        for _ in 0..10_000 {
            let page = self
                .app
                .get(
                    &format!("/v1/ops/audit?{query}&from_seq={from}&limit=1000"),
                    Some(&self.agent),
                )
                .await
                .ok(200);
            out.extend(items(&page));
            match page["next_from_seq"].as_u64() {
                Some(n) => {
                    assert!(n > from, "next_from_seq did not advance: {page}");
                    from = n;
                }
                None => return out,
            }
        }
        panic!("audit paging did not end");
    }

    /// `GET /v1/ops/audit/export` as text (asserts 200 and the JSON Lines content type).
    pub(crate) async fn export(&self) -> String {
        let r = self.app.get("/v1/ops/audit/export", Some(&self.sup1)).await;
        assert_eq!(r.status, 200, "export: {} {}", r.status, r.text());
        assert!(
            r.content_type().starts_with("application/x-ndjson"),
            "export content-type {:?}",
            r.content_type()
        );
        r.text()
    }

    /// `GET /v1/ops/audit/verify` (asserts 200).
    pub(crate) async fn verify(&self) -> Value {
        self.app
            .get("/v1/ops/audit/verify", Some(&self.agent))
            .await
            .ok(200)
    }

    /// A request with an explicit `x-request-id`, so the audit entry can be matched to it.
    pub(crate) async fn send_as(
        &self,
        method: Method,
        path: &str,
        key: &str,
        request_id: &str,
        body: Option<&Value>,
    ) -> Resp {
        let mut rb = self
            .app
            .request(method, path, Some(key))
            .header("x-request-id", request_id);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = self.app.send(rb).await;
        assert_eq!(
            r.header("x-request-id").as_deref(),
            Some(request_id),
            "the request id is not echoed"
        );
        r
    }
}

/// The `items` array of a list response.
#[track_caller]
pub(crate) fn items(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no `items` array: {v}"))
        .clone()
}

/// A compact rendering of audit entries for failure messages.
pub(crate) fn render(entries: &[Value]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "#{} {} {} by {}/{} on {}/{} {}→{} rid={} reason={}{}",
                e["seq"],
                e["at"].as_str().unwrap_or("?"),
                e["action"].as_str().unwrap_or("?"),
                e["actor"]["kind"].as_str().unwrap_or("?"),
                e["actor"]["id"].as_str().unwrap_or("?"),
                e["target"]["kind"].as_str().unwrap_or("?"),
                e["target"]["id"].as_str().unwrap_or("?"),
                e["from_state"].as_str().unwrap_or("-"),
                e["to_state"].as_str().unwrap_or("-"),
                e["request_id"].as_str().unwrap_or("-"),
                e["reason"].as_str().unwrap_or("-"),
                e["outcome"]
                    .as_str()
                    .map(|o| format!(" [{o}: {}]", e["error"].as_str().unwrap_or("?")))
                    .unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- offline verifiers ----------------------------------------------------------------------

/// This module's directory (the Python helper lives here).
fn here() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/ops")
}

/// Runs `python3 verify_chain.py ARGS…`; returns (exit code, the JSON it printed).
pub(crate) async fn python_chain(args: &[&str]) -> (i32, Value) {
    let out = tokio::process::Command::new("python3")
        .arg(here().join("verify_chain.py"))
        .args(args)
        .output()
        .await
        .expect("run python3 (needed by the audit chain test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "verify_chain.py {args:?} printed no JSON ({e}); stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Runs `dxstack audit verify ARGS…`; returns (exit code, stdout + stderr).
pub(crate) async fn cli_verify(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dxstack"))
        .arg("audit")
        .arg("verify")
        .args(args)
        .output()
        .await
        .expect("run dxstack audit verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
