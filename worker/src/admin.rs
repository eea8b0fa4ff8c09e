//! The admin port: Prometheus metrics, liveness and readiness. [`Health`] is what the rest of
//! the worker reports into: whether the database and the broker are reachable (the broker
//! counting only once the topology is declared) and whether the worker is stopping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

pub const BROKER_CONNECTED: &str = "clockworks_broker_connected";
pub const DATABASE_CONNECTED: &str = "clockworks_database_connected";

/// What the worker can currently reach. Cheap to clone; every clone shares the same state.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<HealthState>);

#[derive(Debug, Default)]
struct HealthState {
    database: AtomicBool,
    broker: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// Records whether the claiming connection to PostgreSQL works.
    pub fn set_database(&self, connected: bool) {
        self.0.database.store(connected, Ordering::Relaxed);
        gauge!(DATABASE_CONNECTED).set(f64::from(u8::from(connected)));
    }

    /// Records whether the broker is connected with the topology declared.
    pub fn set_broker(&self, connected: bool) {
        self.0.broker.store(connected, Ordering::Relaxed);
        gauge!(BROKER_CONNECTED).set(f64::from(u8::from(connected)));
    }

    /// From now on the worker finishes its batch and exits; it is no longer ready.
    pub fn set_stopping(&self) {
        self.0.stopping.store(true, Ordering::Relaxed);
    }

    /// What keeps the worker from being ready, or `None` when it is ready.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if self.0.stopping.load(Ordering::Relaxed) {
            Some("stopping")
        } else if !self.0.database.load(Ordering::Relaxed) {
            Some("database unreachable")
        } else if !self.0.broker.load(Ordering::Relaxed) {
            Some("broker unreachable or topology not declared")
        } else {
            None
        }
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    health: Health,
}

/// Serves the admin routes until the process exits.
pub async fn serve(listener: TcpListener, metrics: PrometheusHandle, health: Health) {
    let router = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .with_state(AdminState { metrics, health });
    if let Err(err) = axum::serve(listener, router).await {
        tracing::error!(cause = %err, "the admin port stopped serving");
    }
}

async fn render_metrics(State(state): State<AdminState>) -> String {
    state.metrics.render()
}

async fn alive() -> &'static str {
    "ok"
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    match state.health.not_ready_because() {
        None => (StatusCode::OK, "ready"),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_database_and_broker_and_not_while_stopping() {
        let health = Health::default();
        assert!(health.not_ready_because().is_some());

        health.set_database(true);
        assert!(health.not_ready_because().is_some());

        health.set_broker(true);
        assert_eq!(health.not_ready_because(), None);

        health.set_stopping();
        assert_eq!(health.not_ready_because(), Some("stopping"));
    }
}
