//! Errors as the client sees them: RFC 9457 problem documents.
//!
//! Handlers return [`ApiError`]; [`ApiError::into_problem`] is the one place that
//! decides status, type and title. Internal errors keep their cause chain for the log
//! and show the client nothing but the request id to quote.

use http::StatusCode;
use serde::Serialize;
use std::error::Error as StdError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request, named by its JSON path (`items[0].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field in the request body, or the query/path parameter's name.
    pub field: String,
    /// What is wrong with it, phrased for the client.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error and every cause beneath it on one line (`a: b: c`), for logs: the SDK's
/// errors say what failed only in their sources.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Everything a handler can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is well-formed JSON but some fields are invalid (400 with `errors`).
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// The request cannot be read at all: not JSON, wrong media type shape (400).
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// No usable identity (401). The authorizer normally answers this before us.
    #[error("unauthorized")]
    Unauthorized,
    /// The caller is known but may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The resource does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the resource's current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The same request (same idempotency key) is still being handled (409 + `Retry-After`).
    #[error("request in progress")]
    InProgress {
        /// Seconds after which a retry may find it finished.
        retry_after_secs: u64,
    },
    /// Another writer changed the resource at the same moment, repeatedly; retry (409 +
    /// `Retry-After`).
    #[error("contention: {0}")]
    Contention(String),
    /// The body is larger than the API accepts (413).
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON by its `Content-Type` (415).
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    /// Understood but refused as a whole, e.g. an idempotency key reused with another body (422).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// Something on our side failed; the source is logged, never shown (500).
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    /// Wraps any error as an internal one, keeping it as the source for the log.
    pub fn internal(err: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    /// One field error as a 400.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::InProgress { .. } | Self::Contention(_) => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether this is the request's final answer, which an idempotency key records and
    /// replays: a refusal of what the client asked. Not final: our failures, contention
    /// and "still in progress", which a retry may get past.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Self::Internal(_) | Self::InProgress { .. } | Self::Contention(_) | Self::Unauthorized
        )
    }

    /// Seconds a client should wait before retrying, when the answer says so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::InProgress { retry_after_secs } => Some(*retry_after_secs),
            Self::Contention(_) => Some(1),
            _ => None,
        }
    }

    /// The error and every cause beneath it, for the log line of a failed request.
    pub fn cause_chain(&self) -> String {
        error_chain(self)
    }

    /// The problem document for this error; `instance` is the request id.
    pub fn into_problem(self, instance: &str) -> Problem {
        let status = self.status();
        let (slug, title, detail, errors) = match self {
            Self::Validation(errors) => (
                "validation-error",
                "Your request is not valid",
                format!("{} field(s) failed validation", errors.len()),
                errors,
            ),
            Self::BadRequest(detail) => ("malformed-request", "Malformed request", detail, vec![]),
            Self::Unauthorized => (
                "unauthorized",
                "Unauthorized",
                "A valid bearer token is required".to_owned(),
                vec![],
            ),
            Self::Forbidden(detail) => ("forbidden", "Forbidden", detail, vec![]),
            Self::NotFound(detail) => ("not-found", "Not found", detail, vec![]),
            Self::Conflict(detail) => ("conflict", "Conflict", detail, vec![]),
            Self::InProgress { retry_after_secs } => (
                "request-in-progress",
                "Request in progress",
                format!(
                    "A request with this Idempotency-Key is still being handled; retry after {retry_after_secs} s"
                ),
                vec![],
            ),
            Self::Contention(detail) => (
                "concurrent-modification",
                "Changed concurrently",
                detail,
                vec![],
            ),
            Self::PayloadTooLarge { limit } => (
                "payload-too-large",
                "Request body too large",
                format!("Request bodies are limited to {limit} bytes"),
                vec![],
            ),
            Self::UnsupportedMediaType(got) => (
                "unsupported-media-type",
                "Unsupported media type",
                format!("Send application/json, not {got}"),
                vec![],
            ),
            Self::Unprocessable(detail) => (
                "unprocessable",
                "Request cannot be processed",
                detail,
                vec![],
            ),
            Self::Internal(_) => (
                "internal-error",
                "Internal error",
                "An unexpected error occurred; quote the instance when reporting it".to_owned(),
                vec![],
            ),
        };
        Problem {
            problem_type: format!("urn:commerce:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            instance: instance.to_owned(),
            errors,
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status, repeated in the body as the RFC recommends.
    pub status: u16,
    /// This occurrence, phrased for the client.
    pub detail: String,
    /// The request id, which the logs carry too.
    pub instance: String,
    /// Field errors of a validation failure; omitted otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_carry_their_fields() {
        let p = ApiError::field("items[0].quantity", "must be at least 1").into_problem("req-1");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["status"], 400);
        assert_eq!(v["type"], "urn:commerce:problem:validation-error");
        assert_eq!(v["instance"], "req-1");
        assert_eq!(v["errors"][0]["field"], "items[0].quantity");
    }

    #[test]
    fn internal_errors_show_nothing_of_their_cause() {
        let cause = std::io::Error::other("table commerce-users: connection refused");
        let err = ApiError::internal(cause);
        assert!(err.cause_chain().contains("connection refused"));
        let body = serde_json::to_string(&err.into_problem("req-2")).unwrap();
        assert!(!body.contains("connection refused"), "{body}");
        assert!(!body.contains("commerce-users"), "{body}");
        assert!(body.contains("\"status\":500"));
    }

    #[test]
    fn every_variant_maps_to_its_status() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ApiError::Validation(vec![]), 400),
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::Unauthorized, 401),
            (ApiError::Forbidden("x".into()), 403),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::Conflict("x".into()), 409),
            (
                ApiError::InProgress {
                    retry_after_secs: 1,
                },
                409,
            ),
            (ApiError::PayloadTooLarge { limit: 1 }, 413),
            (ApiError::UnsupportedMediaType("text/plain".into()), 415),
            (ApiError::Unprocessable("x".into()), 422),
        ];
        for (err, status) in cases {
            let p = err.into_problem("i");
            assert_eq!(p.status, status);
            assert!(p.problem_type.starts_with("urn:commerce:problem:"));
        }
    }
}
