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
use crate::openapi;
use crate::problem::ApiError;
use crate::timers::{TimerId, timer_response};

/// `POST /v1/timers/{id}/pause`.
#[utoipa::path(
    post,
    path = "/v1/timers/{id}/pause",
    operation_id = "pause_timer",
    tag = "lifecycle",
    summary = "Pause a timer",
    description = "A scheduled timer stops firing and keeps, as `next_fire_at`, the slot it \
        was waiting for. Pausing a paused timer changes nothing; a completed or failed one \
        answers 409.",
    security(("bearer" = ["timers:write"])),
    params(openapi::TimerIdPath),
    responses(
        (status = 200, description = "The timer as it is afterwards (unchanged, same version, \
            when the action was already done); or an empty body (no content type) when the \
            namespace has no timer with this id.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's version, quoted."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::InvalidState),
        openapi::KeyedRoute,
    ),
)]
pub async fn pause(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    act(&caller, &state, &id, Action::Pause).await
}

/// `POST /v1/timers/{id}/resume`.
#[utoipa::path(
    post,
    path = "/v1/timers/{id}/resume",
    operation_id = "resume_timer",
    tag = "lifecycle",
    summary = "Resume a timer",
    description = "A paused timer goes on; the slots it missed while paused are handled by \
        its schedule's `on_missed` policy. Resuming a scheduled timer changes nothing; a \
        completed or failed one answers 409.",
    security(("bearer" = ["timers:write"])),
    params(openapi::TimerIdPath),
    responses(
        (status = 200, description = "The timer as it is afterwards (unchanged, same version, \
            when the action was already done); or an empty body (no content type) when the \
            namespace has no timer with this id.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's version, quoted."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::InvalidState),
        openapi::KeyedRoute,
    ),
)]
pub async fn resume(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    act(&caller, &state, &id, Action::Resume).await
}

/// `POST /v1/timers/{id}/trigger`.
#[utoipa::path(
    post,
    path = "/v1/timers/{id}/trigger",
    operation_id = "trigger_timer",
    tag = "lifecycle",
    summary = "Fire a timer now",
    description = "One fire at once, out of schedule, of a scheduled, paused or completed \
        timer; the schedule does not move. A trigger while another is pending is the same \
        fire. A failed timer answers 409.",
    security(("bearer" = ["timers:write"])),
    params(openapi::TimerIdPath),
    responses(
        (status = 200, description = "The timer as it is afterwards (unchanged, same version, \
            when the action was already done); or an empty body (no content type) when the \
            namespace has no timer with this id.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's version, quoted."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::InvalidState),
        openapi::KeyedRoute,
    ),
)]
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
