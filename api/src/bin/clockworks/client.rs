//! The HTTP side of `clockworks`: requests to the api with the caller's key, and the api's
//! answers turned into values or into one-line errors built from the problem details.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use thiserror::Error;

/// Longest wait for one answer from the api.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no usable answer. Each reads as one line.
#[derive(Debug, Error)]
pub enum RequestError {
    #[error(
        "no API key: pass --key or set CLOCKWORKS_KEY (`clockworks-api keys create` makes one)"
    )]
    NoKey,
    #[error("--url {0:?} is not an http:// URL; this client speaks plain HTTP only")]
    BadUrl(String),
    #[error("cannot reach the api at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// An RFC 9457 problem: its title, status, and the detail or the offending fields.
    #[error("{title} ({status}): {detail}")]
    Problem {
        title: String,
        status: u16,
        detail: String,
    },
    #[error("unexpected answer from {url}: {status}")]
    Unexpected { url: String, status: StatusCode },
}

/// What the api answered: the status and the JSON body, which is `None` when the body is
/// empty (a single resource that does not exist).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<Value>,
}

/// A client of one api with one key.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
}

impl Client {
    pub fn new(url: &str, key: Option<String>) -> Result<Client, RequestError> {
        let base = Url::parse(url)
            .ok()
            .filter(|base| base.scheme() == "http")
            .ok_or_else(|| RequestError::BadUrl(url.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("clockworks-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| RequestError::Unreachable {
                url: url.to_owned(),
                cause: innermost_cause(&err),
            })?;
        // An empty `CLOCKWORKS_KEY=` means no key, which has its own clear error.
        let key = key.filter(|key| !key.trim().is_empty());
        Ok(Client { http, base, key })
    }

    /// The URL of `segments` under the base URL, each segment percent-encoded as needed (a
    /// timer id may hold `:` or `~`), with `query` appended.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(name, value)| (*name, value.as_str())));
        }
        url
    }

    /// Sends one request with the key and returns the answer of any 2xx status; any other
    /// status becomes an error.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, RequestError> {
        let key = self.key.as_deref().ok_or(RequestError::NoKey)?;
        let mut request = self
            .http
            .request(method, url.clone())
            .header(AUTHORIZATION, format!("Bearer {key}"));
        if let Some(body) = body {
            request = request.json(body);
        }

        let unreachable = |err: reqwest::Error| RequestError::Unreachable {
            url: self.base.to_string(),
            cause: innermost_cause(&err),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;

        if !status.is_success() {
            return Err(problem(&text, status).unwrap_or(RequestError::Unexpected {
                url: url.to_string(),
                status,
            }));
        }
        let body = if text.trim().is_empty() {
            None
        } else {
            let value = serde_json::from_str(&text).map_err(|_| RequestError::Unexpected {
                url: url.to_string(),
                status,
            })?;
            Some(value)
        };
        Ok(Answer { status, body })
    }
}

/// The error a problem-details body describes: the offending fields when it names them,
/// otherwise its detail.
fn problem(text: &str, status: StatusCode) -> Option<RequestError> {
    let body: Value = serde_json::from_str(text).ok()?;
    let title = body["title"].as_str()?.to_owned();
    let fields: Vec<String> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|error| {
            let field = error["field"].as_str().filter(|field| !field.is_empty());
            let detail = error["detail"].as_str().unwrap_or_default();
            format!("{}: {detail}", field.unwrap_or("(body)"))
        })
        .collect();
    let detail = if fields.is_empty() {
        body["detail"].as_str().unwrap_or_default().to_owned()
    } else {
        fields.join("; ")
    };
    Some(RequestError::Problem {
        title,
        status: status.as_u16(),
        detail: one_line(&detail),
    })
}

/// The last cause in an error's chain (`Connection refused (os error 111)`), which says more
/// to a person than the outer "error sending request".
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    one_line(&cause.to_string())
}

/// Text with its line breaks replaced, so that an error stays on one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_validation_problem_names_each_field_with_its_reason() {
        let body = json!({
            "type": "/problems/validation",
            "title": "Invalid request",
            "status": 400,
            "detail": "the request has invalid fields: schedule.at, routing_key",
            "errors": [
                {"field": "schedule.at", "detail": "is not an instant"},
                {"field": "routing_key", "detail": "is required"}
            ]
        });
        let error = problem(&body.to_string(), StatusCode::BAD_REQUEST).unwrap();
        assert_eq!(
            error.to_string(),
            "Invalid request (400): schedule.at: is not an instant; routing_key: is required"
        );
    }

    #[test]
    fn a_problem_without_fields_gives_its_detail() {
        let body = json!({"title": "Forbidden", "status": 403, "detail": "lacks\nscope"});
        let error = problem(&body.to_string(), StatusCode::FORBIDDEN).unwrap();
        assert_eq!(error.to_string(), "Forbidden (403): lacks scope");
    }

    #[test]
    fn a_body_that_is_not_a_problem_is_not_read_as_one() {
        assert!(problem("<html>bad gateway</html>", StatusCode::BAD_GATEWAY).is_none());
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(Client::new("http://h:1", None).is_ok());
        for url in ["https://h", "h:8080", "ftp://h"] {
            assert!(Client::new(url, None).is_err(), "{url}");
        }
    }

    #[test]
    fn ids_are_percent_encoded_as_path_segments_under_the_base_path() {
        let client = Client::new("http://h:1/prefix/", None).unwrap();
        let url = client.url(&["v1", "timers", "a/b c"], &[("group", "x y".to_owned())]);
        assert_eq!(
            url.as_str(),
            "http://h:1/prefix/v1/timers/a%2Fb%20c?group=x+y"
        );
    }
}
