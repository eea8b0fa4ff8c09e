//! JSON request bodies: the content type is checked, the body is read up to the configured
//! limit and parsed, and every way that can fail is answered with a problem, never with the
//! framework's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::app::AppState;
use crate::problem::ApiError;

/// A request body that is well-formed JSON, of any shape.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        check_content_type(request.headers())?;

        // A body that cannot be read to its end (a broken chunked encoding, a client gone
        // mid-body) is the client's doing, and no JSON document either.
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge {
                        limit: state.max_body_bytes,
                    }
                } else {
                    tracing::debug!(cause = %rejection, "the request body could not be read");
                    ApiError::MalformedJson("the body could not be read to its end".to_owned())
                }
            })?;

        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::MalformedJson(err.to_string()))
    }
}

/// Accepts `application/json` and any `application/*+json`, with parameters such as
/// `charset`. JSON is always UTF-8, so a charset parameter is not checked.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(None));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = match essence.split_once('/') {
        Some(("application", "json")) => true,
        Some(("application", subtype)) => subtype.ends_with("+json") && subtype.len() > 5,
        _ => false,
    };
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(Some(text.into_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accepts(content_type: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        check_content_type(&headers).is_ok()
    }

    #[test]
    fn json_types_with_parameters_are_accepted() {
        assert!(accepts("application/json"));
        assert!(accepts("Application/JSON; charset=utf-8"));
        assert!(accepts("application/merge-patch+json"));
    }

    #[test]
    fn other_types_and_a_missing_type_are_refused() {
        assert!(!accepts("text/plain"));
        assert!(!accepts("application/+json"));
        assert!(!accepts("application/jsonp"));
        assert!(!accepts("text/json"));
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }
}
