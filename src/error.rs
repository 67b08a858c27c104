//! Every error a client can see, and the one place it becomes RFC 9457 problem+json.
//!
//! Codes are stable API: partners switch on `code`, never on `detail`.

use serde::Serialize;

/// One failing eligibility rule (`reasons` of a 422 `ineligible`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub message: String,
}

/// A field-level validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidField(String, Vec<FieldError>),
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("a different supervisor must approve this request")]
    FourEyes,
    #[error("{0} not found")]
    NotFound(String),
    #[error("no route for this method and path")]
    MethodNotAllowed,
    #[error("{0}")]
    InvalidTransition(String),
    #[error("{0}")]
    Conflict(&'static str, String),
    #[error("a request with this Idempotency-Key is still being processed")]
    RequestInProgress,
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(u64),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    #[error("the booking is not eligible")]
    Ineligible(Vec<Reason>),
    #[error("a reason is required")]
    ReasonRequired,
    #[error("{1}")]
    Unprocessable(&'static str, String),
    #[error("too many requests")]
    RateLimited,
    #[error("the service is shutting down")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::InvalidField(
            format!("{field}: {message}"),
            vec![FieldError {
                field: field.into(),
                message,
            }],
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_) | ApiError::InvalidField(..) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) | ApiError::FourEyes => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::InvalidTransition(_)
            | ApiError::Conflict(..)
            | ApiError::RequestInProgress => 409,
            ApiError::BodyTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::IdempotencyConflict
            | ApiError::Ineligible(_)
            | ApiError::ReasonRequired
            | ApiError::Unprocessable(..) => 422,
            ApiError::RateLimited => 429,
            ApiError::Unavailable => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidField(..) => "invalid_field",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::FourEyes => "four_eyes_required",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidTransition(_) => "invalid_transition",
            ApiError::Conflict(code, _) => code,
            ApiError::RequestInProgress => "request_in_progress",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::IdempotencyConflict => "idempotency_conflict",
            ApiError::Ineligible(_) => "ineligible",
            ApiError::ReasonRequired => "reason_required",
            ApiError::Unprocessable(code, _) => code,
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Conflict",
            413 => "Payload too large",
            415 => "Unsupported media type",
            422 => "Unprocessable request",
            429 => "Too many requests",
            503 => "Service unavailable",
            _ => "Internal server error",
        }
    }

    /// The problem+json body. Internal details are logged, never returned.
    pub fn to_problem(&self, request_id: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Problem<'a> {
            #[serde(rename = "type")]
            kind: String,
            title: &'a str,
            status: u16,
            detail: String,
            code: &'a str,
            request_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            reasons: Option<&'a [Reason]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            errors: Option<&'a [FieldError]>,
        }
        let detail = match self {
            ApiError::Internal(_) => {
                "internal error; see the server log for this request id".into()
            }
            ApiError::Ineligible(reasons) => format!(
                "not eligible: {}",
                reasons
                    .iter()
                    .map(|r| r.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("https://dxstack.dev/problems/{}", self.code()),
            title: self.title(),
            status: self.status(),
            detail,
            code: self.code(),
            request_id,
            reasons: match self {
                ApiError::Ineligible(r) => Some(r),
                _ => None,
            },
            errors: match self {
                ApiError::InvalidField(_, e) if !e.is_empty() => Some(e),
                _ => None,
            },
        };
        serde_json::to_vec(&problem).unwrap_or_else(|_| b"{\"code\":\"internal\"}".to_vec())
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}
