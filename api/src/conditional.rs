//! Conditional requests on one timer. A timer's ETag is its version in quotes (`"3"`).
//! `If-Match` lists the ETags a client will accept (or `*`: any existing timer);
//! `If-None-Match: *` asks to create only. Weak tags (`W/"3"`) never match, since `If-Match`
//! compares strongly (RFC 9110), and neither does a tag this service never issued.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use clockworks::store::timers::Precondition;

use crate::problem::ApiError;

/// The precondition a request's headers set.
pub struct Conditions(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        conditions(&parts.headers).map(Conditions)
    }
}

fn conditions(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let if_match = joined(headers, &header::IF_MATCH)?;
    let if_none_match = joined(headers, &header::IF_NONE_MATCH)?;
    match (if_match, if_none_match) {
        (None, None) => Ok(Precondition::None),
        (Some(_), Some(_)) => Err(ApiError::invalid_field(
            "If-None-Match",
            "cannot be combined with If-Match",
        )),
        (Some(tags), None) => parse_if_match(&tags),
        (None, Some(tags)) if tags.trim() == "*" => Ok(Precondition::Absent),
        (None, Some(_)) => Err(ApiError::invalid_field(
            "If-None-Match",
            "only `*` (create only) is supported",
        )),
    }
}

/// Every line of a header joined as one comma-separated list, as HTTP allows.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Result<Option<String>, ApiError> {
    let mut lines = Vec::new();
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid_field(name.as_str(), "must be visible ASCII"))?;
        lines.push(text);
    }
    Ok((!lines.is_empty()).then(|| lines.join(",")))
}

fn parse_if_match(tags: &str) -> Result<Precondition, ApiError> {
    if tags.trim() == "*" {
        return Ok(Precondition::Exists);
    }
    let malformed = || {
        ApiError::invalid_field(
            "If-Match",
            "must be `*` or a list of entity tags such as \"3\" (the ETag of a timer)",
        )
    };
    let mut versions = Vec::new();
    for tag in tags.split(',').map(str::trim) {
        let (weak, quoted) = match tag.strip_prefix("W/") {
            Some(quoted) => (true, quoted),
            None => (false, tag),
        };
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|opaque| !opaque.contains('"'))
            .ok_or_else(malformed)?;
        if let (false, Ok(version)) = (weak, opaque.parse::<i64>()) {
            versions.push(version);
        }
    }
    Ok(Precondition::VersionIn(versions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parsed(lines: &[(&HeaderName, &str)]) -> Result<Precondition, ApiError> {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        conditions(&headers)
    }

    #[test]
    fn if_match_lists_strong_versions_from_every_line() {
        let precondition = parsed(&[
            (&header::IF_MATCH, r#""3", W/"4""#),
            (&header::IF_MATCH, r#""5", "x""#),
        ])
        .unwrap();
        assert_eq!(precondition, Precondition::VersionIn(vec![3, 5]));
        assert_eq!(
            parsed(&[(&header::IF_MATCH, "*")]).unwrap(),
            Precondition::Exists
        );
    }

    #[test]
    fn if_none_match_star_asks_to_create_only() {
        assert_eq!(
            parsed(&[(&header::IF_NONE_MATCH, "*")]).unwrap(),
            Precondition::Absent
        );
        assert_eq!(parsed(&[]).unwrap(), Precondition::None);
    }

    #[test]
    fn malformed_or_contradictory_conditions_are_refused() {
        for lines in [
            &[(&header::IF_MATCH, "3")][..],
            &[(&header::IF_MATCH, r#""3"#)],
            &[(&header::IF_NONE_MATCH, r#""3""#)],
            &[(&header::IF_MATCH, r#""3""#), (&header::IF_NONE_MATCH, "*")],
        ] {
            assert!(parsed(lines).is_err(), "{lines:?} was accepted");
        }
    }
}
