//! Reading many things at once: `GET /v1/timers` lists a namespace's timers a page at a
//! time, and `GET /v1/timers/{id}/fires` shows a timer's recent fires.
//!
//! Pages are in id order and resume after the last id of the page before (keyset
//! pagination), so timers created or deleted between two requests never make the next page
//! skip or repeat a timer that existed throughout. The cursor is that last id, hex-encoded:
//! opaque to clients, and checked when it comes back.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clockworks::store::fires::{self, FireRecord};
use clockworks::store::timers::{self, ListFilter};
use clockworks::timer::{TimerState, validate_group, validate_id};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{Caller, ReadTimers};
use crate::openapi;
use crate::problem::ApiError;
use crate::query::QueryString;
use crate::timers::TimerId;

/// Timers per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most timers one page may hold.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// Fires listed when the client does not say.
pub const DEFAULT_FIRES_LISTED: usize = 100;
/// Most fires one answer may list.
pub const MAX_FIRES_LISTED: usize = 1_000;

/// `GET /v1/timers?group=&state=&limit=&cursor=`: one page of the caller's timers, with the
/// cursor of the next page, or `null` after the last.
#[utoipa::path(
    get,
    path = "/v1/timers",
    operation_id = "list_timers",
    tag = "timers",
    summary = "List timers",
    description = "One page of the namespace's timers in id order. Pages resume after the \
        last id of the page before, so timers created or deleted between two requests never \
        make a page skip or repeat a timer that existed throughout. Unknown or repeated \
        parameters are a 400.",
    security(("bearer" = ["timers:read"])),
    params(
        ("group" = Option<String>, Query, description = "Only timers with this group label."),
        ("state" = Option<openapi::TimerState>, Query, description = "Only timers in this state."),
        openapi::TimerPageLimit,
        ("cursor" = Option<String>, Query,
            description = "The `next_cursor` of the page before; opaque."),
    ),
    responses(
        (status = 200, description = "A page of timers.", body = openapi::TimerPage),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
pub async fn list(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    query: QueryString,
) -> Result<Response, ApiError> {
    let mut params = query.params(&["group", "state", "limit", "cursor"]);
    let filter = ListFilter {
        group: params.parse("group", |group| {
            validate_group(group).map(|()| group.to_owned())
        }),
        state: params.parse("state", str::parse::<TimerState>),
        after_id: params.parse("cursor", decode_cursor),
    };
    let page_size = params.count("limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    params.finish()?;

    // One more than a page tells whether another page follows.
    let client = state.db.connection().await?;
    let mut page = state
        .db
        .bounded(timers::list(
            &**client,
            &caller.namespace,
            &filter,
            as_limit(page_size + 1),
        ))
        .await?;

    let next_cursor = if page.len() > page_size {
        page.truncate(page_size);
        page.last().map(|timer| encode_cursor(&timer.id))
    } else {
        None
    };
    let timers: Vec<Value> = page.iter().map(|timer| timer.to_json()).collect();
    Ok(Json(json!({ "timers": timers, "next_cursor": next_cursor })).into_response())
}

/// `GET /v1/timers/{id}/fires?limit=`: the latest fires of the timer's current incarnation,
/// newest first; an empty 200 when there is no such timer.
#[utoipa::path(
    get,
    path = "/v1/timers/{id}/fires",
    operation_id = "list_fires",
    tag = "schedules",
    summary = "Recent fires of a timer",
    description = "The latest fires of the timer, newest first. A timer deleted and created \
        again under the same id starts a new history. Fires are kept for a retention period.",
    security(("bearer" = ["timers:read"])),
    params(
        openapi::TimerIdPath,
        openapi::FiresLimit,
    ),
    responses(
        (status = 200, description = "The fires; or an empty body (no content type) when the \
            namespace has no timer with this id.", body = openapi::FireHistory),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
pub async fn fires(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    TimerId(id): TimerId,
    query: QueryString,
) -> Result<Response, ApiError> {
    let mut params = query.params(&["limit"]);
    let limit = params.count("limit", DEFAULT_FIRES_LISTED, MAX_FIRES_LISTED);
    params.finish()?;

    let client = state.db.connection().await?;
    let history = state
        .db
        .bounded(async {
            let Some(timer) = timers::get(&**client, &caller.namespace, &id).await? else {
                return Ok(None);
            };
            let recent = fires::recent(&**client, timer.uid, as_limit(limit)).await?;
            Ok::<_, timers::StoreError>(Some(recent))
        })
        .await?;

    Ok(match history {
        Some(recent) => {
            let fires: Vec<Value> = recent.iter().map(fire_json).collect();
            Json(json!({ "fires": fires })).into_response()
        }
        None => StatusCode::OK.into_response(),
    })
}

fn fire_json(fire: &FireRecord) -> Value {
    let lateness_ms = fire.fired_at.duration_since(fire.scheduled_at).as_millis();
    json!({
        "fire_seq": fire.fire_seq,
        "scheduled_at": fire.scheduled_at,
        "fired_at": fire.fired_at,
        "lateness_ms": i64::try_from(lateness_ms).unwrap_or(i64::MAX),
        "outcome": fire.outcome,
    })
}

/// A count bounded by the page limits, as a SQL `limit`.
fn as_limit(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn encode_cursor(last_id: &str) -> String {
    hex::encode(last_id)
}

fn decode_cursor(cursor: &str) -> Result<String, String> {
    let invalid = || "is not a cursor returned by this API".to_owned();
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    validate_id(&id).map_err(|_| invalid())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_id_it_was_made_from() {
        for id in ["t1", "order-42.reminder:x~y", &"z".repeat(128)] {
            assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        }
    }

    #[test]
    fn cursors_this_api_never_made_are_refused() {
        for cursor in [
            "",
            "zz",
            "6",
            &hex::encode("not an id"),
            &hex::encode([0xff]),
        ] {
            assert!(decode_cursor(cursor).is_err(), "{cursor:?} was accepted");
        }
    }
}
