//! The single-timer routes: create (`POST /v1/timers`), create or replace
//! (`PUT /v1/timers/{id}`), read and delete (`GET`/`DELETE /v1/timers/{id}`). A timer that
//! does not exist in the caller's namespace is answered 200 with an empty body, whether or
//! not another namespace has that id. Every answer with a timer carries its version as the
//! ETag, which `If-Match` on a `PUT` compares ([`crate::conditional`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clockworks::store::timers::{self, Created, Precondition, Put};
use clockworks::timer::{NewTimer, Timer, generate_id, validate_id};
use serde_json::Value;

use crate::app::AppState;
use crate::auth::{Caller, ReadTimers, WriteTimers};
use crate::body::JsonBody;
use crate::conditional::Conditions;
use crate::operations::{self, IdempotencyKey};
use crate::problem::ApiError;

/// `POST /v1/timers`. A JSON object creates one timer; a JSON array is a batch, accepted
/// as an operation ([`operations::create_many`]). This is the one place requests split by
/// shape.
pub async fn create(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    match body {
        Value::Array(_) => operations::create_many(&caller, &state, key, body).await,
        body => create_one(&caller, &state, &body).await,
    }
}

/// Creates one timer. A client id that exists in the namespace makes the request a retry
/// (the same definition: 200 with the stored timer) or a conflict (another definition: 409).
async fn create_one(
    caller: &Caller<WriteTimers>,
    state: &AppState,
    body: &Value,
) -> Result<Response, ApiError> {
    let new = NewTimer::from_json(body, state.limits).map_err(ApiError::invalid_fields)?;
    let id = new.id.unwrap_or_else(generate_id);

    let client = state.db.connection().await?;
    let created = state
        .db
        .bounded(timers::create(
            &**client,
            &caller.namespace,
            &id,
            &new.definition,
        ))
        .await?;

    match created {
        Created::Inserted(timer) => {
            metrics::counter!("clockworks_timers_created_total").increment(1);
            tracing::debug!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                timer.id = %timer.id,
                next_fire_at = ?timer.next_fire_at,
                "timer created"
            );
            created_response(&timer)
        }
        Created::Existing(timer) if timer.has_definition(&new.definition) => {
            Ok(timer_response(StatusCode::OK, &timer))
        }
        Created::Existing(timer) => Err(ApiError::Conflict { id: timer.id }),
    }
}

/// `PUT /v1/timers/{id}`: creates the timer (201) or replaces its definition (200), if the
/// request's precondition holds (412 otherwise). An `id` in the body must be the path's.
pub async fn replace(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
    Conditions(precondition): Conditions,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = NewTimer::from_json(&body, state.limits).map_err(ApiError::invalid_fields)?;
    if new.id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(ApiError::invalid_field(
            "id",
            format!("must be the id in the path ({id:?}) or be left out"),
        ));
    }

    let mut client = state.db.connection().await?;
    let put = state
        .db
        .bounded(timers::put(
            &mut **client,
            &caller.namespace,
            &id,
            &new.definition,
            &precondition,
        ))
        .await?;

    match put {
        Put::Created(timer) => {
            metrics::counter!("clockworks_timers_created_total").increment(1);
            tracing::debug!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                timer.id = %timer.id,
                next_fire_at = ?timer.next_fire_at,
                "timer created by a put"
            );
            created_response(&timer)
        }
        Put::Replaced(timer) => {
            metrics::counter!("clockworks_timers_replaced_total").increment(1);
            tracing::debug!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                timer.id = %timer.id,
                timer.version = timer.version,
                next_fire_at = ?timer.next_fire_at,
                "timer replaced"
            );
            Ok(timer_response(StatusCode::OK, &timer))
        }
        Put::PreconditionFailed { current_version } => Err(ApiError::PreconditionFailed(
            precondition_failure(&id, &precondition, current_version),
        )),
    }
}

/// Says why a precondition failed, from what the request asked and what was there.
fn precondition_failure(
    id: &str,
    precondition: &Precondition,
    current_version: Option<i64>,
) -> String {
    match (precondition, current_version) {
        (Precondition::Absent, _) => {
            format!("timer {id:?} exists, and If-None-Match: * asks to create only")
        }
        (_, None) => format!("there is no timer {id:?} for If-Match to match"),
        (_, Some(version)) => format!(
            "timer {id:?} is at version {version} (ETag \"{version}\"), which If-Match does \
             not name"
        ),
    }
}

/// 201 with the new timer and its `Location`.
fn created_response(timer: &Timer) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(&format!("/v1/timers/{}", timer.id))
        .map_err(|err| ApiError::Internal(err.into()))?;
    let mut response = timer_response(StatusCode::CREATED, timer);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// `GET /v1/timers/{id}`.
pub async fn get(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    let client = state.db.connection().await?;
    let timer = state
        .db
        .bounded(timers::get(&**client, &caller.namespace, &id))
        .await?;

    Ok(match timer {
        Some(timer) => timer_response(StatusCode::OK, &timer),
        None => StatusCode::OK.into_response(),
    })
}

/// `DELETE /v1/timers/{id}`: answers with the timer as it was before it was deleted.
pub async fn delete(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
) -> Result<Response, ApiError> {
    let client = state.db.connection().await?;
    let deleted = state
        .db
        .bounded(timers::delete(&**client, &caller.namespace, &id))
        .await?;

    Ok(match deleted {
        Some(timer) => {
            metrics::counter!("clockworks_timers_deleted_total").increment(1);
            tracing::debug!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                timer.id = %timer.id,
                "timer deleted"
            );
            timer_response(StatusCode::OK, &timer)
        }
        None => StatusCode::OK.into_response(),
    })
}

/// A timer as the body of a response, with its version as the ETag.
pub fn timer_response(status: StatusCode, timer: &Timer) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", timer.version))
        .expect("a quoted number is a valid header value");
    (status, [(header::ETAG, etag)], axum::Json(timer.to_json())).into_response()
}

/// The `{id}` of a timer route, checked like a client-chosen id: one that could never have
/// been created is a bad request rather than a timer that is not there.
pub struct TimerId(pub String);

impl FromRequestParts<AppState> for TimerId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_field("id", rejection.body_text()))?;
        validate_id(&id).map_err(|detail| ApiError::invalid_field("id", detail))?;
        Ok(TimerId(id))
    }
}
