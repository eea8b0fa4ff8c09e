//! Groups: the labels that timers may carry, listed with their timers counted by state
//! (`GET /v1/groups`), and the actions on every timer of one group (`POST
//! /v1/groups/{group}/pause`, `/resume`, `DELETE /v1/groups/{group}`). Each action is a batch
//! operation, answered 202 with its `Location` ([`crate::operations`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use clockworks::store::operations::{self, OperationKind, OperationRequest};
use clockworks::timer::TimerState;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::{Caller, ReadTimers, WriteTimers};
use crate::openapi;
use crate::operations::{IdempotencyKey, check_group, submit};
use crate::problem::ApiError;
use crate::query::QueryString;

/// Groups listed per page unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Most groups listed per page.
pub const MAX_LIST_LIMIT: usize = 1_000;

/// Every state a timer can be in, each counted (zero included) for every group.
const STATES: [TimerState; 4] = [
    TimerState::Scheduled,
    TimerState::Paused,
    TimerState::Completed,
    TimerState::Failed,
];

/// `GET /v1/groups?limit=&cursor=`: the groups of the namespace in name order, each with its
/// timers counted by state. `next_cursor` is set while more may follow.
#[utoipa::path(
    get,
    path = "/v1/groups",
    operation_id = "list_groups",
    tag = "groups",
    summary = "List groups",
    description = "The namespace's group labels in name order, each with its timers counted \
        by state.",
    security(("bearer" = ["timers:read"])),
    params(
        openapi::GroupPageLimit,
        ("cursor" = Option<String>, Query,
            description = "The `next_cursor` of the page before."),
    ),
    responses(
        (status = 200, description = "A page of groups.", body = openapi::GroupPage),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
pub async fn list(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    query: QueryString,
) -> Result<Response, ApiError> {
    let mut params = query.params(&["limit", "cursor"]);
    let limit = params.count("limit", DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT) as i64;
    let after = params.parse("cursor", |cursor| Ok::<_, String>(cursor.to_owned()));
    params.finish()?;

    let client = state.db.connection().await?;
    let groups = state
        .db
        .bounded(operations::group_counts(
            &**client,
            &caller.namespace,
            after.as_deref(),
            limit,
        ))
        .await?;

    let next_cursor = match groups.last() {
        Some(last) if groups.len() as i64 == limit => Some(last.group.clone()),
        _ => None,
    };
    let groups: Vec<Value> = groups
        .iter()
        .map(|group| {
            let counts: Map<String, Value> = STATES
                .iter()
                .map(|state| {
                    let count = group.by_state.get(state.as_str()).copied().unwrap_or(0);
                    (state.as_str().to_owned(), json!(count))
                })
                .collect();
            json!({
                "group": group.group,
                "counts": counts,
                "total": group.by_state.values().sum::<i64>(),
            })
        })
        .collect();
    let body = json!({ "groups": groups, "next_cursor": next_cursor });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `POST /v1/groups/{group}/pause`: pauses every scheduled timer of the group. Each keeps
/// the slot it was waiting for.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/pause",
    operation_id = "pause_group",
    tag = "groups",
    summary = "Pause every timer of a group",
    description = "Pauses every scheduled timer of the group, as an operation; each keeps the \
        slot it was waiting for.",
    security(("bearer" = ["timers:write"])),
    params(openapi::GroupPath, openapi::IdempotencyKeyHeader),
    responses(
        (status = 202, description = "The pause was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::IdempotencyKeyReused),
        openapi::KeyedRoute,
    ),
)]
pub async fn pause(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    GroupName(group): GroupName,
) -> Result<Response, ApiError> {
    let hash = operations::request_hash(OperationKind::Pause, &json!({ "group": group }));
    submit(
        &caller,
        &state,
        key,
        OperationRequest::PauseGroup { group },
        hash,
    )
    .await
}

/// `POST /v1/groups/{group}/resume`: resumes every paused timer of the group; the slots each
/// missed while paused are handled by its schedule's missed-fire policy.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/resume",
    operation_id = "resume_group",
    tag = "groups",
    summary = "Resume every timer of a group",
    description = "Resumes every paused timer of the group, as an operation; the slots each \
        missed are handled by its schedule's `on_missed` policy.",
    security(("bearer" = ["timers:write"])),
    params(openapi::GroupPath, openapi::IdempotencyKeyHeader),
    responses(
        (status = 202, description = "The resume was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::IdempotencyKeyReused),
        openapi::KeyedRoute,
    ),
)]
pub async fn resume(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    GroupName(group): GroupName,
) -> Result<Response, ApiError> {
    let hash = operations::request_hash(OperationKind::Resume, &json!({ "group": group }));
    submit(
        &caller,
        &state,
        key,
        OperationRequest::ResumeGroup { group },
        hash,
    )
    .await
}

/// `DELETE /v1/groups/{group}`: deletes every timer of the group, as `DELETE
/// /v1/timers?group=` does.
#[utoipa::path(
    delete,
    path = "/v1/groups/{group}",
    operation_id = "delete_group",
    tag = "groups",
    summary = "Delete every timer of a group",
    description = "Deletes every timer of the group, as an operation, as \
        `DELETE /v1/timers?group=` does.",
    security(("bearer" = ["timers:write"])),
    params(openapi::GroupPath, openapi::IdempotencyKeyHeader),
    responses(
        (status = 202, description = "The deletion was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 400, response = openapi::BadRequest),
        (status = 409, response = openapi::IdempotencyKeyReused),
        openapi::KeyedRoute,
    ),
)]
pub async fn delete(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    GroupName(group): GroupName,
) -> Result<Response, ApiError> {
    let hash = operations::request_hash(OperationKind::Delete, &json!({ "group": group }));
    submit(
        &caller,
        &state,
        key,
        OperationRequest::DeleteGroup { group },
        hash,
    )
    .await
}

/// The `{group}` of a group route, checked like a timer's group label.
pub struct GroupName(pub String);

impl FromRequestParts<AppState> for GroupName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(group) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_field("group", rejection.body_text()))?;
        check_group("group", &group)?;
        Ok(GroupName(group))
    }
}
