//! Previews: the next instants a schedule fires at, DST included, computed without changing
//! anything. `GET /v1/timers/{id}/preview?count=` previews a stored timer from the slot it
//! waits for ([`Timer::upcoming_fires`]); `POST /v1/schedules/preview` previews a schedule
//! not stored yet. Each lists at most [`MAX_PREVIEW_FIRES`] instants, and the schedule
//! module bounds the work of finding each.
//!
//! [`Timer::upcoming_fires`]: clockworks::timer::Timer::upcoming_fires

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clockworks::schedule::{MAX_PREVIEW_FIRES, Schedule, parse_instant};
use clockworks::store::timers::{self, StoreError};
use clockworks::validation::Errors;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{Caller, ReadTimers};
use crate::body::JsonBody;
use crate::openapi;
use crate::problem::ApiError;
use crate::query::QueryString;
use crate::timers::TimerId;

/// Instants listed when the client does not say how many.
pub const DEFAULT_PREVIEW_COUNT: usize = 10;

/// The fields of a `POST /v1/schedules/preview` body.
const PREVIEW_FIELDS: [&str; 3] = ["schedule", "count", "after"];

/// `GET /v1/timers/{id}/preview?count=`: `{"next_fires": [...]}`, or an empty 200 when there
/// is no such timer.
#[utoipa::path(
    get,
    path = "/v1/timers/{id}/preview",
    operation_id = "preview_timer",
    tag = "schedules",
    summary = "Next fires of a timer",
    description = "The next fires of the timer as its schedule would make them if none were \
        missed: the slot it waits for (in the past for a long-paused timer), then the slots \
        after it, within `end_at` and what is left of `max_fires`. A completed or failed timer \
        has none; a pending trigger is not listed.",
    security(("bearer" = ["timers:read"])),
    params(
        openapi::TimerIdPath,
        openapi::PreviewCount,
    ),
    responses(
        (status = 200, description = "The next fires; or an empty body (no content type) when \
            the namespace has no timer with this id.", body = openapi::NextFires),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
pub async fn stored(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
    query: QueryString,
) -> Result<Response, ApiError> {
    let mut params = query.params(&["count"]);
    let count = params.count("count", DEFAULT_PREVIEW_COUNT, MAX_PREVIEW_FIRES);
    params.finish()?;

    let client = state.db.connection().await?;
    let timer = state
        .db
        .bounded(timers::get(&**client, &caller.namespace, &id))
        .await?;
    let Some(timer) = timer else {
        return Ok(StatusCode::OK.into_response());
    };

    let fires = timer
        .upcoming_fires(count)
        .map_err(|detail| StoreError::Unreadable { id, detail })?;
    Ok(preview_response(&fires))
}

/// `POST /v1/schedules/preview` with `{"schedule": {...}, "count"?: n, "after"?: instant}`:
/// the next `count` fires strictly after `after` (default: the database's now) of a timer
/// defined then.
#[utoipa::path(
    post,
    path = "/v1/schedules/preview",
    operation_id = "preview_schedule",
    tag = "schedules",
    summary = "Next fires of a schedule",
    description = "Checks a schedule as a timer's would be checked and lists its next fires \
        strictly after `after`, DST included, as for a timer defined then. Nothing is stored.",
    security(("bearer" = ["timers:read"])),
    request_body(
        content = openapi::PreviewRequest,
        examples(
            ("cron-across-dst" = (summary = "A cron schedule across a DST change",
                value = json!({
                    "schedule": {"cron": "30 2 * * *", "timezone": "America/New_York"},
                    "count": 3,
                    "after": "2027-03-12T12:00:00Z"
                }))),
            ("every" = (summary = "Every 15 minutes from now",
                value = json!({"schedule": {"every": "15m"}}))),
        ),
    ),
    responses(
        (status = 200, description = "The next fires.", body = openapi::NextFires),
        openapi::JsonBodyRoute,
        openapi::KeyedRoute,
    ),
)]
pub async fn unstored(
    _caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = PreviewRequest::from_json(&body)?;

    let after = match request.after {
        Some(after) => after,
        None => {
            let client = state.db.connection().await?;
            state.db.bounded(database_now(&client)).await?
        }
    };

    let fires = request.schedule.preview(after, request.count);
    Ok(preview_response(&fires))
}

fn preview_response(fires: &[Timestamp]) -> Response {
    Json(json!({ "next_fires": fires })).into_response()
}

async fn database_now(client: &tokio_postgres::Client) -> Result<Timestamp, ApiError> {
    Ok(client.query_one("select now()", &[]).await?.try_get(0)?)
}

/// A checked `POST /v1/schedules/preview` body.
struct PreviewRequest {
    schedule: Schedule,
    count: usize,
    after: Option<Timestamp>,
}

impl PreviewRequest {
    fn from_json(body: &Value) -> Result<PreviewRequest, ApiError> {
        let Some(object) = body.as_object() else {
            return Err(ApiError::invalid_field(
                "",
                "must be an object with a \"schedule\"",
            ));
        };
        let mut errors = Errors::default();
        for key in object.keys() {
            if !PREVIEW_FIELDS.contains(&key.as_str()) {
                errors.add(key.clone(), "is not a field of a preview request");
            }
        }

        let schedule = match object.get("schedule") {
            None | Some(Value::Null) => {
                errors.add("schedule", "is required");
                None
            }
            Some(schedule) => Schedule::from_json(schedule)
                .map_err(|field_errors| {
                    errors.extend(
                        field_errors
                            .into_iter()
                            .map(|error| error.within("schedule")),
                    )
                })
                .ok(),
        };
        let count = match object.get("count") {
            None | Some(Value::Null) => Some(DEFAULT_PREVIEW_COUNT),
            Some(count) => match count.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(count) if (1..=MAX_PREVIEW_FIRES).contains(&count) => Some(count),
                _ => {
                    errors.add(
                        "count",
                        format!("must be a whole number from 1 to {MAX_PREVIEW_FIRES}"),
                    );
                    None
                }
            },
        };
        let after = match object.get("after") {
            None | Some(Value::Null) => None,
            Some(after) => parse_instant(after)
                .map_err(|detail| errors.add("after", detail))
                .ok(),
        };

        match (schedule, count) {
            (Some(schedule), Some(count)) if errors.is_empty() => Ok(PreviewRequest {
                schedule,
                count,
                after,
            }),
            _ => Err(ApiError::invalid_fields(errors.into_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_fields(body: Value) -> Vec<String> {
        match PreviewRequest::from_json(&body) {
            Err(ApiError::Invalid { errors, .. }) => {
                let mut fields: Vec<String> = errors.into_iter().map(|error| error.field).collect();
                fields.sort();
                fields
            }
            Err(other) => panic!("expected a validation error, got {other:?}"),
            Ok(_) => panic!("{body} was accepted"),
        }
    }

    #[test]
    fn a_preview_request_defaults_its_count_and_start() {
        let request = PreviewRequest::from_json(&json!({"schedule": {"every": "1m"}})).unwrap();
        assert_eq!(request.count, DEFAULT_PREVIEW_COUNT);
        assert_eq!(request.after, None);
    }

    #[test]
    fn every_bad_field_of_a_preview_request_is_named() {
        assert_eq!(
            refused_fields(json!({"schedule": {"every": "0s"}, "count": 1001,
                                  "after": "soon", "colour": "red"})),
            ["after", "colour", "count", "schedule.every"]
        );
        assert_eq!(refused_fields(json!({"count": 0})), ["count", "schedule"]);
    }
}
