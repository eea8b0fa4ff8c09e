//! The action routes of one timer: `POST /v1/timers/{id}/pause`, `/resume` and `/trigger`
//! ([`clockworks::lifecycle`] says what each does). Each answers 200 with the timer as it is
//! afterwards, 200 with an empty body when there is no such timer, and 409 when the timer's
//! state does not allow the action. Repeating an action is not an error: pausing a paused
//! timer, resuming a scheduled one or triggering one whose trigger is pending answers 200
//! with the timer unchanged (same version), so a client may retry an action safely.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clockworks::lifecycle::Action;
use clockworks::store::timers::{self, Transition};

use crate::app::AppState;
use crate::auth::{Caller, WriteTimers};
use crate::problem::ApiError;
use crate::timers::{TimerId, timer_response};

/// `POST /v1/timers/{id}/pause`.
pub async fn pause(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    act(&caller, &state, &id, Action::Pause).await
}

/// `POST /v1/timers/{id}/resume`.
pub async fn resume(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    act(&caller, &state, &id, Action::Resume).await
}

/// `POST /v1/timers/{id}/trigger`.
pub async fn trigger(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    act(&caller, &state, &id, Action::Trigger).await
}

async fn act(
    caller: &Caller<WriteTimers>,
    state: &AppState,
    id: &str,
    action: Action,
) -> Result<Response, ApiError> {
    let mut client = state.db.connection().await?;
    let transition = state
        .db
        .bounded(timers::transition(
            &mut **client,
            &caller.namespace,
            id,
            action,
        ))
        .await?;

    match transition {
        None => Ok(StatusCode::OK.into_response()),
        Some(Transition::Changed(timer)) => {
            metrics::counter!("clockworks_timer_actions_total", "action" => action.as_str())
                .increment(1);
            tracing::debug!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                timer.id = %timer.id,
                timer.state = %timer.state,
                timer.version = timer.version,
                %action,
                "timer action applied"
            );
            Ok(timer_response(StatusCode::OK, &timer))
        }
        Some(Transition::Unchanged(timer)) => Ok(timer_response(StatusCode::OK, &timer)),
        Some(Transition::NotAllowed(timer)) => Err(ApiError::InvalidState {
            id: timer.id,
            state: timer.state,
            action,
        }),
    }
}
