//! Raw HTTP plumbing: one client per app, and [`Resp`], a fully read response with
//! assertion helpers whose panic messages carry the request and the whole body.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::TestApp;

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build reqwest client")
}

/// A response read to the end.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Vec<u8>,
    what: String,
}

impl Resp {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<non-ascii>").to_string())
    }

    pub(crate) fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    /// The body as JSON (panics with the raw body if it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub(crate) fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {} with body {}",
            self.what,
            self.status,
            self.text()
        );
        self.json()
    }

    /// Asserts an RFC 9457 problem: the status, `application/problem+json`, `code`, and a
    /// body `status` equal to the HTTP status. Returns the problem body.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) -> Value {
        let body = self.problem_any(status);
        assert_eq!(
            body["code"], code,
            "{}: expected code {code:?}; body {}",
            self.what, body
        );
        body
    }

    /// Like [`Resp::problem`] but accepts any `code` (returned in the body).
    #[track_caller]
    pub(crate) fn problem_any(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status} problem, got {} with body {}",
            self.what,
            self.status,
            self.text()
        );
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "{}: error content-type is {:?}, want application/problem+json; body {}",
            self.what,
            self.content_type(),
            self.text()
        );
        let body = self.json();
        assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{}: problem without a string `code`: {body}",
            self.what
        );
        assert_eq!(
            body["status"].as_u64(),
            Some(u64::from(status)),
            "{}: problem `status` field differs from the HTTP status: {body}",
            self.what
        );
        body
    }
}

impl TestApp {
    /// A request to `path` (relative to the base url) with an optional bearer token.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> RequestBuilder {
        let rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a request and reads the whole response (panics on transport errors).
    pub(crate) async fn send(&self, rb: RequestBuilder) -> Resp {
        self.try_send(rb)
            .await
            .unwrap_or_else(|e| panic!("transport error: {e}"))
    }

    /// Sends a request and reads the whole response; transport errors are returned
    /// (as text naming the request) for tests that stop the server under load.
    pub(crate) async fn try_send(&self, rb: RequestBuilder) -> Result<Resp, String> {
        let req = rb.build().expect("build request");
        let what = format!("{} {}", req.method(), req.url().path());
        let what = match req.url().query() {
            Some(q) => format!("{what}?{q}"),
            None => what,
        };
        let resp = self
            .client
            .execute(req)
            .await
            .map_err(|e| format!("{what}: {e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("{what}: reading body: {e:?}"))?
            .to_vec();
        Ok(Resp {
            status,
            headers,
            bytes,
            what,
        })
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path, Some(token)).json(body))
            .await
    }

    pub(crate) async fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PUT, path, Some(token)).json(body))
            .await
    }

    /// POST with an `Idempotency-Key` header.
    pub(crate) async fn post_idem(&self, path: &str, token: &str, key: &str, body: &Value) -> Resp {
        let rb = self
            .request(Method::POST, path, Some(token))
            .header("idempotency-key", key)
            .json(body);
        self.send(rb).await
    }

    /// POST of raw bytes with the given content type.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let rb = self
            .request(Method::POST, path, token)
            .header("content-type", content_type)
            .body(body);
        self.send(rb).await
    }
}
