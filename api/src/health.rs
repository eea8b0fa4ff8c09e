//! Liveness and readiness. `/healthz` answers while the process runs; `/readyz` answers 200
//! only when the database answers a query in time, so a load balancer stops sending requests
//! that could only fail.

use std::time::Duration;

use axum::extract::State;

use crate::app::AppState;
use crate::problem::ApiError;

/// Longest time the readiness query may take, connection included.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "service",
    summary = "Liveness",
    description = "Answers while the process runs.",
    security(()),
    responses(
        (status = 200, description = "The process runs.", body = String,
            content_type = "text/plain", example = "ok"),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "service",
    summary = "Readiness",
    description = "Answers 200 only when the database answers a query within a second, so a \
        load balancer stops sending requests that could only fail.",
    security(()),
    responses(
        (status = 200, description = "Ready to serve.", body = String,
            content_type = "text/plain", example = "ready"),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let check = async {
        let client = state.db.connection().await?;
        client.query_one("select 1", &[]).await?;
        Ok::<_, ApiError>(())
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(err @ ApiError::Unavailable(_))) => Err(err),
        Ok(Err(other)) => Err(ApiError::Unavailable(other.into())),
        Err(_) => Err(ApiError::Unavailable(
            format!("the readiness query took longer than {READY_TIMEOUT:?}").into(),
        )),
    }
}
