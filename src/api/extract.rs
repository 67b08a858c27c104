//! Extractors that turn HTTP into validated values, with every rejection as problem+json.

use super::AppState;
use crate::auth::{self, ApiKey, KeyOwner, Principal};
use crate::engine::{Command, Idempotency, Reply, Request as EngineRequest};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use store::keys::{self, table};
use workflows::network::Operator;

tokio::task_local! {
    /// The current request's id, for problem bodies built far from the handler.
    pub static REQUEST_ID: String;
}

#[derive(Clone)]
pub(crate) struct RequestId(pub String);

/// The authenticated caller.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        if auth::same_secret(token, &state.admin_token) {
            return limited(state, Principal::Admin);
        }
        let hash = auth::hash_key(token);
        let key: ApiKey = state
            .store
            .get(&keys::one(table::API_KEY, &hash))?
            .ok_or(ApiError::Unauthorized)?;
        let principal = match key.owner {
            KeyOwner::Partner(p) => Principal::Partner(p),
            KeyOwner::Provider(p) => Principal::Provider(p),
            KeyOwner::Operator(o) => {
                let op: Operator = state
                    .store
                    .get(&keys::one(table::OPERATOR, o.as_str().as_bytes()))?
                    .ok_or(ApiError::Unauthorized)?;
                Principal::Operator(o, op.role)
            }
        };
        limited(state, principal)
    }
}

/// Admits the caller if its key's bucket has a token, else 429 `rate_limited`.
fn limited(state: &AppState, principal: Principal) -> Result<Caller, ApiError> {
    if state.limiter.allow(&principal.scope()) {
        Ok(Caller(principal))
    } else {
        Err(ApiError::RateLimited)
    }
}

impl Caller {
    pub(super) fn admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            _ => Err(ApiError::Forbidden(
                "this route needs the admin token".into(),
            )),
        }
    }

    pub(super) fn partner(&self) -> Result<workflows::PartnerId, ApiError> {
        match &self.0 {
            Principal::Partner(p) => Ok(p.clone()),
            _ => Err(ApiError::Forbidden("this route needs a partner key".into())),
        }
    }

    pub(super) fn provider(&self) -> Result<workflows::ProviderId, ApiError> {
        match &self.0 {
            Principal::Provider(p) => Ok(p.clone()),
            _ => Err(ApiError::Forbidden(
                "this route needs a provider key".into(),
            )),
        }
    }
}

/// Method, path, request id and `Idempotency-Key` of a state-changing request.
pub(crate) struct Meta {
    pub method: Method,
    pub path: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
}

/// Longest `Idempotency-Key` accepted.
const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let s = v.to_str().ok().map(str::trim).unwrap_or("");
                if s.is_empty()
                    || s.len() > IDEMPOTENCY_KEY_LEN_MAX
                    || !s.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(ApiError::field(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    ));
                }
                Some(s.to_owned())
            }
        };
        Ok(Meta {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            request_id,
            idempotency_key,
        })
    }
}

/// The raw request body, within `[server] max_body`.
pub(crate) struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // The body must be JSON whatever the declared type: curl's default
        // `application/x-www-form-urlencoded` is common and harmless.
        let limit = state.max_body;
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge(limit as u64))
            }
            Err(rej) => Err(ApiError::InvalidJson(rej.body_text())),
        }
    }
}

/// Parses JSON into a DTO: syntax errors are `invalid_json`, shape errors `invalid_field`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::InvalidField(e.to_string(), Vec::new()),
            _ => ApiError::InvalidJson(e.to_string()),
        }
    })
}

/// Submits `command` and turns the durable reply into an HTTP response.
pub(crate) async fn submit(
    state: &AppState,
    principal: Principal,
    meta: &Meta,
    body: &[u8],
    command: Command,
) -> Response {
    let idempotency = meta.idempotency_key.as_ref().map(|key| {
        let mut h = Sha256::new();
        h.update(meta.method.as_str().as_bytes());
        h.update([0]);
        h.update(meta.path.as_bytes());
        h.update([0]);
        h.update(body);
        Idempotency {
            key: key.clone(),
            fingerprint: h.finalize().into(),
        }
    });
    let reply = state
        .engine
        .submit(EngineRequest {
            principal,
            request_id: meta.request_id.clone(),
            idempotency,
            command,
        })
        .await;
    reply_response(reply)
}

pub(crate) fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if reply.status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut resp = (status, [("content-type", content_type)], reply.body).into_response();
    if reply.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// A JSON 200 response.
pub(crate) fn json_ok(value: &impl serde::Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok(([("content-type", "application/json")], body).into_response())
}

/// Parses the id of a resource being created or replaced: a malformed one is `invalid_field`.
pub(crate) fn put_id<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, workflows::InvalidId>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::field("id", e.to_string()))
}

/// Parses a path id with the domain's rule, so a malformed id is a plain 404.
pub(crate) fn path_id<T>(
    raw: &str,
    what: &str,
    parse: impl Fn(&str) -> Result<T, workflows::InvalidId>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError::NotFound(format!("{what} {raw}")))
}

/// Parses a query string into `T`, with errors as `invalid_field`.
pub(crate) fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::InvalidField(format!("query: {e}"), Vec::new()))
}

/// Audits a read of members' personal data durably before the data is returned.
pub(crate) async fn record_access(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    partner: &workflows::PartnerId,
    members: Vec<workflows::MemberId>,
    via: &str,
) -> Result<(), ApiError> {
    if members.is_empty() {
        return Ok(());
    }
    let reply = state
        .engine
        .submit(EngineRequest {
            principal: principal.clone(),
            request_id: request_id.to_owned(),
            idempotency: None,
            command: Command::RecordAccess {
                partner: partner.clone(),
                members,
                via: via.to_owned(),
            },
        })
        .await;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(ApiError::Internal("the access could not be audited".into()))
    }
}
