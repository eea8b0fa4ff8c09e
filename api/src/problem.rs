//! The one error type of the HTTP API and its RFC 9457 problem details. Each variant has a
//! stable problem `type`, a status and the headers its status calls for; causes of 500 and
//! 503 answers are logged here and never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clockworks::keys::Scope;
use clockworks::lifecycle::Action;
use clockworks::timer::TimerState;
use clockworks::validation::FieldError;
use serde_json::json;
use thiserror::Error;

/// What `application/problem+json` answers carry.
const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a request was not served.
#[derive(Debug, Error)]
pub enum ApiError {
    /// 401: no `Authorization: Bearer` header.
    #[error("no bearer credential was presented")]
    MissingCredential,
    /// 401: a bearer token that is malformed, unknown, revoked or has the wrong secret.
    #[error("the presented credential is not a valid key")]
    InvalidCredential,
    /// 403: a valid key without the route's scope.
    #[error("the key lacks the {0} scope")]
    Forbidden(Scope),
    /// 400: fields that do not meet the requirements, each named.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 400: a body that does not parse as JSON; the parser's message gives the position.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// 415: a body that is not declared as JSON.
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(Option<String>),
    /// 413: a body over the configured limit.
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 409: a create under a taken id with another definition.
    #[error("timer {id:?} already exists with a different definition")]
    Conflict { id: String },
    /// 409: the timer's state does not allow the action.
    #[error("timer {id:?} is {state} and cannot be asked to {action}")]
    InvalidState {
        id: String,
        state: TimerState,
        action: Action,
    },
    /// 412: an `If-Match` or `If-None-Match` that does not hold; nothing was changed.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 409: an `Idempotency-Key` used before with another request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// 404: no route has this path.
    #[error("no such route")]
    NotFound,
    /// 405: the path exists, not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 503: shed because the in-flight limit is reached.
    #[error("too many requests in flight")]
    Overloaded,
    /// 503: the database cannot be reached in time; the cause is logged.
    #[error("the database is unavailable: {0}")]
    Unavailable(Cause),
    /// 500: anything else; the cause is logged, never returned.
    #[error("unexpected failure: {0}")]
    Internal(Cause),
}

impl ApiError {
    /// A validation failure naming every offending field.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors
            .iter()
            .map(|error| match error.field.as_str() {
                "" => "(body)",
                field => field,
            })
            .collect();
        let detail = format!("the request has invalid fields: {}", fields.join(", "));
        ApiError::Invalid { detail, errors }
    }

    /// A validation failure of one field.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldError::new(field, detail)])
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingCredential | ApiError::InvalidCredential => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Invalid { .. } | ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict { .. } | ApiError::InvalidState { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type` (a relative URI, stable across versions) and its title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MissingCredential | ApiError::InvalidCredential => {
                ("/problems/unauthorized", "Unauthorized")
            }
            ApiError::Forbidden(_) => ("/problems/forbidden", "Forbidden"),
            ApiError::Invalid { .. } => ("/problems/validation", "Invalid request"),
            ApiError::MalformedJson(_) => ("/problems/malformed-json", "Malformed JSON"),
            ApiError::UnsupportedMediaType(_) => {
                ("/problems/unsupported-media-type", "Unsupported media type")
            }
            ApiError::PayloadTooLarge { .. } => {
                ("/problems/payload-too-large", "Request body too large")
            }
            ApiError::Conflict { .. } => ("/problems/conflict", "Conflict"),
            ApiError::InvalidState { .. } => {
                ("/problems/invalid-state", "Not allowed in this state")
            }
            ApiError::PreconditionFailed(_) => {
                ("/problems/precondition-failed", "Precondition failed")
            }
            ApiError::IdempotencyKeyReused => {
                ("/problems/idempotency-key-reused", "Idempotency key reused")
            }
            ApiError::NotFound => ("/problems/not-found", "Not found"),
            ApiError::MethodNotAllowed => ("/problems/method-not-allowed", "Method not allowed"),
            ApiError::Overloaded | ApiError::Unavailable(_) => {
                ("/problems/unavailable", "Service unavailable")
            }
            ApiError::Internal(_) => ("/problems/internal", "Internal error"),
        }
    }

    /// What the client is told; internal causes stay in the logs.
    fn detail(&self) -> String {
        match self {
            ApiError::MissingCredential => {
                "send an API key as `Authorization: Bearer <key>`".to_owned()
            }
            ApiError::InvalidCredential => {
                "the API key is malformed, unknown or revoked".to_owned()
            }
            ApiError::Forbidden(scope) => format!("this API key lacks the {scope} scope"),
            ApiError::UnsupportedMediaType(Some(content_type)) => format!(
                "the body is {content_type:?}; send application/json \
                 (or an application/*+json type)"
            ),
            ApiError::UnsupportedMediaType(None) => {
                "the request has no Content-Type; send application/json".to_owned()
            }
            ApiError::Overloaded => "the server is at capacity; retry shortly".to_owned(),
            ApiError::Unavailable(_) => "the database is unavailable; retry shortly".to_owned(),
            ApiError::Internal(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    /// Headers the status calls for: a challenge for 401 and 403, a retry hint for 503.
    fn headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        match self {
            ApiError::MissingCredential => {
                vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))]
            }
            ApiError::InvalidCredential => vec![(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            )],
            ApiError::Forbidden(scope) => {
                let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
                HeaderValue::from_str(&challenge)
                    .map(|value| vec![(header::WWW_AUTHENTICATE, value)])
                    .unwrap_or_default()
            }
            ApiError::Overloaded | ApiError::Unavailable(_) => vec![(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            )],
            _ => Vec::new(),
        }
    }

    fn log(&self) {
        match self {
            ApiError::Unavailable(cause) => tracing::warn!(cause = %cause, "database unavailable"),
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();

        let status = self.status();
        let (kind, title) = self.kind();
        let mut body = json!({
            "type": kind,
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        if let ApiError::Invalid { errors, .. } = &self {
            body["errors"] = json!(errors);
        }

        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_part_of_the_detail() {
        let error = ApiError::Internal("secret connection string".into());
        assert!(!error.detail().contains("secret"));
        let error = ApiError::Unavailable("pool timed out at host db-7".into());
        assert!(!error.detail().contains("db-7"));
    }

    #[test]
    fn a_validation_detail_names_each_field() {
        let error = ApiError::invalid_fields(vec![
            FieldError::new("schedule.at", "is not an instant"),
            FieldError::new("routing_key", "is required"),
        ]);
        assert!(error.detail().contains("schedule.at, routing_key"));
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
