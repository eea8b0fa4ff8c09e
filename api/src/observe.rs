//! What every request leaves behind: its count and duration by route template, method and
//! status, and one debug log line. Routes are labelled by template (`/v1/timers/{id}`), never
//! by raw path, so the number of series stays bounded.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// The route label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Middleware recording `clockworks_http_requests_total` and
/// `clockworks_http_request_duration_seconds`.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE.to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());

    let response = next.run(request).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::counter!(
        "clockworks_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "clockworks_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method,
    )
    .record(elapsed.as_secs_f64());
    tracing::debug!(
        http.method = method,
        http.route = %route,
        http.status = status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Standard methods by name; anything else shares one label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
