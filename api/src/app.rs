//! The server: shared state, the public router with its layers (load shedding, panics
//! answered as 500s, body limit, request metrics), the admin router (metrics, health) and
//! the two listeners with their graceful shutdown on SIGTERM or Ctrl-C.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{BoxError, Router, middleware};
use clockworks::config::redact_url;
use clockworks::timer::Limits;
use deadpool_postgres::Pool;
use futures::FutureExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::auth::KeyCache;
use crate::config::ServeArgs;
use crate::database::Database;
use crate::openapi;
use crate::problem::ApiError;
use crate::{groups, health, lifecycle, listing, observe, operations, preview, timers};

/// The Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What every handler may use. Cheap to clone: it is shared per request.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub keys: Arc<KeyCache>,
    /// Limits applied to each timer definition.
    pub limits: Limits,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

impl AppState {
    /// The state of a server configured by `args`, using `pool`.
    pub fn new(args: &ServeArgs, pool: Pool) -> Self {
        let db = Database::new(
            pool,
            Duration::from_millis(args.pool.db_pool_wait_ms),
            Duration::from_millis(args.db_query_timeout_ms),
        );
        Self {
            db,
            keys: Arc::new(KeyCache::new(Duration::from_millis(args.key_cache_ttl_ms))),
            limits: Limits {
                max_payload_bytes: args.max_payload_bytes,
            },
            max_body_bytes: args.max_body_bytes,
        }
    }
}

/// The public API. Requests beyond `max_in_flight` at once are shed with a 503 rather than
/// queued, so an overloaded copy answers quickly and a load balancer can go elsewhere.
pub fn router(state: AppState, max_in_flight: usize) -> Router {
    let shed_load = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(max_in_flight));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs))
        .route("/v1/timers", post(timers::create))
        .route("/v1/timers/{id}", get(timers::get).delete(timers::delete))
        .route("/v1/timers", get(listing::list))
        .route("/v1/timers/{id}", put(timers::replace))
        .route("/v1/timers/{id}/pause", post(lifecycle::pause))
        .route("/v1/timers/{id}/resume", post(lifecycle::resume))
        .route("/v1/timers/{id}/trigger", post(lifecycle::trigger))
        .route("/v1/timers/{id}/fires", get(listing::fires))
        .route("/v1/timers/{id}/preview", get(preview::stored))
        .route("/v1/schedules/preview", post(preview::unstored))
        .route(
            "/v1/timers",
            put(operations::replace_many).delete(operations::delete_many),
        )
        .route("/v1/operations", get(operations::list))
        .route("/v1/operations/{id}", get(operations::get))
        .route("/v1/groups", get(groups::list))
        .route("/v1/groups/{group}", delete(groups::delete))
        .route("/v1/groups/{group}/pause", post(groups::pause))
        .route("/v1/groups/{group}/resume", post(groups::resume))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn(contain_panics))
        .layer(shed_load)
        .layer(middleware::from_fn(observe::record))
        .with_state(state)
}

async fn overloaded(_: BoxError) -> ApiError {
    ApiError::Overloaded
}

/// Answers a request whose handler panicked as any unexpected failure is answered: a 500
/// problem, the cause logged and never returned, rather than a connection dropped mid-way.
async fn contain_panics(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            ApiError::Internal(format!("a handler panicked: {message}").into()).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The admin port: Prometheus metrics and the same health checks as the public port.
pub fn admin_router(state: AppState, prometheus: PrometheusHandle) -> Router {
    let metrics = move |State(state): State<AppState>| async move {
        record_pool_gauges(state.db.pool());
        (
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            prometheus.render(),
        )
            .into_response()
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// Pool gauges are read when scraped, so an idle process does no periodic work for them.
fn record_pool_gauges(pool: &Pool) {
    let status = pool.status();
    let gauge = |state: &'static str, value: usize| {
        metrics::gauge!("clockworks_db_pool_connections", "state" => state).set(value as f64);
    };
    gauge("idle", status.available);
    gauge("in_use", status.size.saturating_sub(status.available));
    gauge("max", status.max_size);
}

/// Runs the api until SIGTERM or Ctrl-C, then lets requests in flight finish.
pub async fn serve(args: ServeArgs, prometheus: PrometheusHandle) -> anyhow::Result<()> {
    let database_url = redact_url(&args.database.database_url);
    if args.database.migrate_on_start {
        let applied = clockworks::db::migrate(&args.database.database_url)
            .await
            .context("applying migrations at start")?;
        tracing::info!(applied = ?applied, "migrations applied");
    }

    let pool = clockworks::db::pool(&args.database.database_url, &args.pool)
        .context("configuring the database pool")?;
    let state = AppState::new(&args, pool);
    let public = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let admin = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("listening on {}", args.admin_listen))?;
    let shutdown = shutdown_signal()?.shared();

    tracing::info!(
        listen = %args.listen,
        admin_listen = %args.admin_listen,
        database = %database_url,
        "clockworks-api serving"
    );
    let public = axum::serve(public, router(state.clone(), args.max_in_flight))
        .with_graceful_shutdown(shutdown.clone());
    let admin =
        axum::serve(admin, admin_router(state, prometheus)).with_graceful_shutdown(shutdown);
    tokio::try_join!(public.into_future(), admin.into_future())?;

    tracing::info!("clockworks-api stopped");
    Ok(())
}

/// Completes on the first SIGTERM or Ctrl-C. The SIGTERM handler is installed at once, so
/// one sent while the listeners start is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("secret-detail-3f9a")
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_without_the_panic_message() {
        let router = Router::new()
            .route("/boom", get(boom))
            .layer(middleware::from_fn(contain_panics));

        let request = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("/problems/internal"), "{body}");
        assert!(!body.contains("secret-detail"), "{body}");
    }
}
