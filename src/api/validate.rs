//! Field checks that collect every problem of a request before answering 400.

use crate::error::{ApiError, FieldError};
use workflows::{Date, Millis};

/// Longest free-text field (names, reasons).
pub(crate) const TEXT_LEN_MAX: usize = 500;
/// Longest list in a request (pincodes, services, benefits …).
pub(crate) const LIST_LEN_MAX: usize = 10_000;

#[derive(Default)]
pub(crate) struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    pub(super) fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.fail(field, message);
        }
    }

    /// A list's `limit`: `default` when absent, else 1 to `max`.
    pub(super) fn limit(&mut self, asked: Option<usize>, default: usize, max: usize) -> usize {
        let limit = asked.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            self.fail("limit", format!("must be 1 to {max}"));
        }
        limit
    }

    /// A required non-empty text of at most [`TEXT_LEN_MAX`] characters, trimmed.
    pub(super) fn text(&mut self, field: &str, value: &str) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.fail(field, "must not be empty");
        } else if v.chars().count() > TEXT_LEN_MAX {
            self.fail(field, format!("must be at most {TEXT_LEN_MAX} characters"));
        } else if v.chars().any(|c| c.is_control()) {
            self.fail(field, "must not contain control characters");
        }
        v.to_owned()
    }

    pub(super) fn list_len<T>(&mut self, field: &str, list: &[T]) {
        if list.len() > LIST_LEN_MAX {
            self.fail(field, format!("must have at most {LIST_LEN_MAX} items"));
        }
    }

    pub(super) fn date(&mut self, field: &str, value: &str) -> Date {
        Date::parse(value).unwrap_or_else(|| {
            self.fail(field, "must be a date YYYY-MM-DD");
            Date(0)
        })
    }

    pub(super) fn duration(&mut self, field: &str, value: &str) -> Millis {
        match crate::config::parse_duration(value) {
            Ok(d) if !d.is_zero() && d.as_millis() < i64::MAX as u128 => {
                Millis(d.as_millis() as i64)
            }
            Ok(_) => {
                self.fail(field, "must be longer than zero");
                Millis(0)
            }
            Err(e) => {
                self.fail(field, e);
                Millis(0)
            }
        }
    }

    pub(super) fn time(&mut self, field: &str, value: &str) -> workflows::Timestamp {
        crate::clock::parse_rfc3339(value).unwrap_or_else(|| {
            self.fail(
                field,
                "must be an RFC 3339 time such as 2030-01-01T09:00:00Z",
            );
            workflows::Timestamp(0)
        })
    }

    pub(super) fn paise(&mut self, field: &str, value: i64) -> workflows::Paise {
        if value < 0 {
            self.fail(field, "must not be negative");
        }
        workflows::Paise(value)
    }

    pub(super) fn pincode(&mut self, field: &str, value: &str) -> String {
        let ok = !value.is_empty()
            && value.len() <= 12
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        self.check(ok, field, "must be a pincode (1 to 12 letters or digits)");
        value.to_owned()
    }

    pub(super) fn id<T>(
        &mut self,
        field: &str,
        value: &str,
        parse: impl Fn(&str) -> Result<T, workflows::InvalidId>,
    ) -> Option<T> {
        match parse(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }

    /// `Ok` if no check failed, else 400 `invalid_field` listing every failure.
    pub(super) fn done(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let summary = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Err(ApiError::InvalidField(summary, self.errors))
    }
}

/// A required reason: non-empty after trimming (else 422 `reason_required`) and at most
/// [`TEXT_LEN_MAX`] characters (else 400 `invalid_field`).
pub(crate) fn required_reason(r: Option<&str>) -> Result<String, ApiError> {
    let reason = r.map(str::trim).unwrap_or("");
    if reason.is_empty() {
        return Err(ApiError::ReasonRequired);
    }
    if reason.chars().count() > TEXT_LEN_MAX {
        return Err(ApiError::field("reason", "must be at most 500 characters"));
    }
    Ok(reason.to_owned())
}

/// An `Option` that validation has already proven `Some`.
pub(crate) fn checked<T>(v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::internal("a validated field was missing"))
}
