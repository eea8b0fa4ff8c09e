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
use crate::openapi;
use crate::operations::{self, IdempotencyKey};
use crate::problem::ApiError;

/// `POST /v1/timers`. A JSON object creates one timer; a JSON array is a batch, accepted
/// as an operation ([`operations::create_many`]). This is the one place requests split by
/// shape.
#[utoipa::path(
    post,
    path = "/v1/timers",
    operation_id = "create_timers",
    tag = "timers",
    summary = "Create a timer, or a batch of timers",
    description = "A JSON object creates one timer: 201 with `Location`. When its client id \
        exists with the same definition the request is a safe retry (200 with the stored \
        timer); with another definition, 409. A JSON array is a batch, validated whole and \
        accepted as an operation: 202 with `Location: /v1/operations/{id}`.",
    security(("bearer" = ["timers:write"])),
    params(openapi::IdempotencyKeyHeader),
    request_body(
        content = openapi::CreateTimersBody,
        examples(
            ("at" = (summary = "Once, at an instant", value = json!({
                "id": "order-42-reminder",
                "group": "orders",
                "schedule": {"at": "2027-01-01T09:00:00Z"},
                "routing_key": "orders.reminder",
                "payload": {"order": 42},
                "headers": {"trace-id": "abc"}
            }))),
            ("after" = (summary = "Once, after a delay", value = json!({
                "schedule": {"after": "30s"},
                "routing_key": "sessions.expire",
                "payload": {"session": "9f2c"}
            }))),
            ("every" = (summary = "Fixed rate, 12 fires", value = json!({
                "id": "reports-refresh",
                "schedule": {"every": "5m", "max_fires": 12, "on_missed": "skip"},
                "routing_key": "reports.refresh",
                "expire_after": "1m"
            }))),
            ("cron" = (summary = "Cron in a time zone", value = json!({
                "id": "daily-digest",
                "group": "digests",
                "schedule": {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris",
                             "end_at": "2027-12-31T23:59:59Z"},
                "routing_key": "digests.send",
                "payload": {"template": "daily"}
            }))),
            ("batch" = (summary = "A batch of two", value = json!([
                {"id": "order-43-reminder", "group": "orders",
                 "schedule": {"at": "2027-01-02T09:00:00Z"},
                 "routing_key": "orders.reminder", "payload": {"order": 43}},
                {"id": "order-44-reminder", "group": "orders",
                 "schedule": {"after": "1h"},
                 "routing_key": "orders.reminder", "payload": {"order": 44}}
            ]))),
        ),
    ),
    responses(
        (status = 201, description = "The timer was created.", body = openapi::Timer,
            headers(
                ("ETag" = String, description = "The timer's version, quoted: `\"1\"`."),
                ("Location" = String, description = "`/v1/timers/{id}`."),
            )),
        (status = 200, description = "A timer with this id and the same definition exists: \
            a safe retry, answered with the stored timer.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's version, quoted."))),
        (status = 202, description = "The batch was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 409, response = openapi::TimerConflict),
        openapi::JsonBodyRoute,
        openapi::KeyedRoute,
    ),
)]
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
            &client,
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
#[utoipa::path(
    put,
    path = "/v1/timers/{id}",
    operation_id = "put_timer",
    tag = "timers",
    summary = "Create or replace a timer",
    description = "Creates the timer (201) or replaces its definition (200). The new schedule's \
        first fire is computed afresh; the timer keeps its `fire_count`, and a paused timer \
        stays paused. `If-Match` makes the replace conditional on the version; \
        `If-None-Match: *` makes it a create only. An `id` in the body must be the path's.",
    security(("bearer" = ["timers:write"])),
    params(
        openapi::TimerIdPath,
        ("If-Match" = Option<String>, Header,
            description = "`*` (any existing timer) or a list of ETags such as `\"3\"`; weak \
                tags never match.", example = "\"3\""),
        ("If-None-Match" = Option<String>, Header,
            description = "Only `*`: create only, never replace.", example = "*"),
    ),
    request_body(
        content = openapi::TimerInput,
        examples(
            ("replace" = (summary = "A new definition", value = json!({
                "group": "orders",
                "schedule": {"after": "PT90M"},
                "routing_key": "orders.reminder",
                "payload": {"order": 42, "attempt": 2}
            }))),
        ),
    ),
    responses(
        (status = 200, description = "The definition was replaced.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's new version, quoted."))),
        (status = 201, description = "There was no such timer: it was created.",
            body = openapi::Timer,
            headers(
                ("ETag" = String, description = "The timer's version, quoted: `\"1\"`."),
                ("Location" = String, description = "`/v1/timers/{id}`."),
            )),
        (status = 412, response = openapi::PreconditionFailed),
        openapi::JsonBodyRoute,
        openapi::KeyedRoute,
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/timers/{id}",
    operation_id = "get_timer",
    tag = "timers",
    summary = "Read a timer",
    security(("bearer" = ["timers:read"])),
    params(openapi::TimerIdPath),
    responses(
        (status = 200, description = "The timer; or an empty body (no content type) when the \
            namespace has no timer with this id.", body = openapi::Timer,
            headers(("ETag" = String, description = "The timer's version, quoted."))),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
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
#[utoipa::path(
    delete,
    path = "/v1/timers/{id}",
    operation_id = "delete_timer",
    tag = "timers",
    summary = "Delete a timer",
    description = "Deletes the timer: it will not fire again. Answers with the timer as it \
        was, or with an empty body when there was none.",
    security(("bearer" = ["timers:write"])),
    params(openapi::TimerIdPath),
    responses(
        (status = 200, description = "The deleted timer; or an empty body (no content type) \
            when the namespace had no timer with this id.", body = openapi::Timer,
            headers(("ETag" = String, description = "The version it had, quoted."))),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
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
