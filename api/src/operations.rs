//! Batch requests and the operations that carry them out. A batch (`POST`/`PUT /v1/timers`
//! with a JSON array, `DELETE /v1/timers` with ids or a group, and the group actions) is
//! validated whole, stored as an operation with its validated items, and answered 202 with
//! `Location: /v1/operations/{id}`; a worker applies it. `GET /v1/operations/{id}` shows its
//! status, counts per outcome and per-item results; `GET /v1/operations` lists recent ones.
//!
//! Validation happens before anything is stored: a batch with any invalid item is refused
//! whole, naming each bad field by its item's index (`[3].schedule.at`). Outcomes that only
//! the database can decide (an id that exists, a version that moved on) are item results.
//! Items without an id get a generated one here, stored in the operation, so that applying
//! it again after a failed attempt gives the same ids.
//!
//! An `Idempotency-Key` header binds a key to a request within the namespace: the same key
//! with the same request answers with the operation it created; with another request, 409.
//! A key can be used again once its operation has been deleted by retention, 7 days after it
//! finished.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clockworks::store::operations::{
    self, NewOperation, Operation, OperationError, OperationKind, OperationRequest, Submitted,
    TimerItem,
};
use clockworks::timer::{Limits, NewTimer, generate_id, validate_id};
use clockworks::validation::FieldError;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{Caller, ReadTimers, WriteTimers};
use crate::body::JsonBody;
use crate::openapi;
use crate::problem::ApiError;
use crate::query::QueryString;

/// Most items one batch may hold.
pub const MAX_BATCH_ITEMS: usize = 10_000;
/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Item results shown with an operation unless `limit` says otherwise.
pub const DEFAULT_ITEMS_LIMIT: usize = 1_000;
/// Most item results shown at once.
pub const MAX_ITEMS_LIMIT: usize = 10_000;
/// Operations listed per page unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 50;
/// Most operations listed per page.
pub const MAX_LIST_LIMIT: usize = 500;

/// The `Idempotency-Key` header of a batch request, if it has one.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|key| {
                (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
                    && key.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"),
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// `POST /v1/timers` with a JSON array: creates many timers. Called by the create route,
/// which splits requests by shape.
pub async fn create_many(
    caller: &Caller<WriteTimers>,
    state: &AppState,
    key: IdempotencyKey,
    body: Value,
) -> Result<Response, ApiError> {
    let hash = operations::request_hash(OperationKind::Create, &body);
    let items = batch_items(body)?;

    let limits = state.limits;
    let request = validate_off_thread(move || validate_creates(&items, limits)).await?;

    submit(caller, state, key, request, hash).await
}

/// `PUT /v1/timers` with a JSON array: replaces the definitions of many timers. Each item
/// names the timer by `id` and may name the `version` it must be at.
#[utoipa::path(
    put,
    path = "/v1/timers",
    operation_id = "replace_timers",
    tag = "operations",
    summary = "Replace a batch of timers",
    description = "Replaces the definitions of many timers, each named by `id`, optionally at \
        the `version` it must be at. The batch is validated whole and accepted as an \
        operation; ids that do not exist, or versions that moved on, are item results \
        (`not_found`, `conflict`).",
    security(("bearer" = ["timers:write"])),
    params(openapi::IdempotencyKeyHeader),
    request_body(
        content = openapi::ReplaceBatch,
        examples(
            ("two-timers" = (summary = "Two timers, one of them at a known version",
                value = json!([
                    {"id": "order-42-reminder", "version": 1, "group": "orders",
                     "schedule": {"after": "PT90M"}, "routing_key": "orders.reminder",
                     "payload": {"order": 42, "attempt": 2}},
                    {"id": "daily-digest", "schedule": {"cron": "0 8 * * MON-FRI",
                     "timezone": "Europe/Paris"}, "routing_key": "digests.send"}
                ]))),
        ),
    ),
    responses(
        (status = 202, description = "The batch was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 409, response = openapi::IdempotencyKeyReused),
        openapi::JsonBodyRoute,
        openapi::KeyedRoute,
    ),
)]
pub async fn replace_many(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let hash = operations::request_hash(OperationKind::Replace, &body);
    let items = batch_items(body)?;

    let limits = state.limits;
    let request = validate_off_thread(move || validate_replaces(&items, limits)).await?;

    submit(&caller, &state, key, request, hash).await
}

/// `DELETE /v1/timers` with a body `{"ids": [...]}`, or with `?group=`: deletes many timers.
/// Without either it is refused: there is no "delete everything".
#[utoipa::path(
    delete,
    path = "/v1/timers",
    operation_id = "delete_timers",
    tag = "operations",
    summary = "Delete a batch of timers",
    description = "Deletes the timers named in the body, or every timer of `?group=`: one or \
        the other, never neither (there is no \"delete everything\"). Accepted as an \
        operation; ids that do not exist are `not_found` item results.",
    security(("bearer" = ["timers:write"])),
    params(
        ("group" = Option<String>, Query,
            description = "Delete every timer of this group (then send no body)."),
        openapi::IdempotencyKeyHeader,
    ),
    request_body(
        content = openapi::DeleteTimers,
        description = "The ids to delete; leave the body out to delete by `?group=`.",
        examples(
            ("ids" = (summary = "Two timers by id",
                value = json!({"ids": ["order-42-reminder", "order-43-reminder"]}))),
        ),
    ),
    responses(
        (status = 202, description = "The deletion was accepted as an operation.",
            body = openapi::Operation,
            headers(("Location" = String, description = "`/v1/operations/{id}`."))),
        (status = 409, response = openapi::IdempotencyKeyReused),
        openapi::JsonBodyRoute,
        openapi::KeyedRoute,
    ),
)]
pub async fn delete_many(
    caller: Caller<WriteTimers>,
    State(state): State<AppState>,
    key: IdempotencyKey,
    query: QueryString,
    request: Request,
) -> Result<Response, ApiError> {
    let mut params = query.params(&["group"]);
    let group = params.parse("group", |group| {
        clockworks::timer::validate_group(group).map(|()| group.to_owned())
    });
    params.finish()?;
    let body = if has_body(&request) {
        let JsonBody(body) = JsonBody::from_request(request, &state).await?;
        Some(body)
    } else {
        None
    };

    let (client_request, request) = match (body, group) {
        (Some(body), None) => {
            let ids = delete_ids(&body)?;
            (body, OperationRequest::DeleteIds { ids })
        }
        (None, Some(group)) => (
            json!({ "group": group }),
            OperationRequest::DeleteGroup { group },
        ),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "group",
                "delete either the ids in the body or a group, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "",
                "name the timers to delete: a body {\"ids\": [...]} or ?group=",
            ));
        }
    };
    let hash = operations::request_hash(OperationKind::Delete, &client_request);

    submit(&caller, &state, key, request, hash).await
}

/// Checks a group named by a route or a query.
pub fn check_group(field: &str, group: &str) -> Result<(), ApiError> {
    clockworks::timer::validate_group(group)
        .map_err(|detail| ApiError::invalid_field(field, detail))
}

/// Stores a validated request as an operation and answers 202 with where to poll it. A
/// repeated idempotency key answers with the operation it created, if the request is the
/// same.
pub async fn submit(
    caller: &Caller<WriteTimers>,
    state: &AppState,
    IdempotencyKey(key): IdempotencyKey,
    request: OperationRequest,
    request_hash: Vec<u8>,
) -> Result<Response, ApiError> {
    let new = NewOperation {
        id: Uuid::now_v7(),
        namespace: &caller.namespace,
        request: &request,
        idempotency_key: key.as_deref(),
        request_hash: &request_hash,
    };

    let client = state.db.connection().await?;
    let submitted = state
        .db
        .bounded(operations::submit(&**client, &new))
        .await?;

    match submitted {
        Submitted::Accepted(operation) => {
            metrics::counter!(
                "clockworks_operations_accepted_total",
                "kind" => operation.kind.clone()
            )
            .increment(1);
            tracing::info!(
                namespace = %caller.namespace,
                key.id = %caller.key_id,
                operation.id = %operation.id,
                operation.kind = %operation.kind,
                batch.size = request.item_count(),
                "operation accepted"
            );
            accepted(&operation)
        }
        Submitted::Existing {
            operation,
            same_request: true,
        } => accepted(&operation),
        Submitted::Existing { operation, .. } => {
            tracing::debug!(
                namespace = %caller.namespace,
                operation.id = %operation.id,
                "idempotency key reused with another request"
            );
            Err(ApiError::IdempotencyKeyReused)
        }
    }
}

/// 202 with the operation and its `Location`.
fn accepted(operation: &Operation) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(&format!("/v1/operations/{}", operation.id))
        .map_err(|err| ApiError::Internal(err.into()))?;
    let mut response = (StatusCode::ACCEPTED, axum::Json(operation.to_json())).into_response();
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// `GET /v1/operations/{id}`: the operation with its counts and a page of item results
/// (`?items=false` for none, `?limit=&offset=` for another page; `next_offset` is set while
/// more remain). 200 with an empty body when the namespace has no such operation.
#[utoipa::path(
    get,
    path = "/v1/operations/{id}",
    operation_id = "get_operation",
    tag = "operations",
    summary = "Read an operation",
    description = "The operation's status and counts per outcome, with a page of item \
        results in index order. An accepted operation completes even if the api copy that \
        accepted it dies.",
    security(("bearer" = ["timers:read"])),
    params(
        ("id" = String, Path, format = "uuid", description = "The operation's id.",
            example = "019a8f2e-7c41-7d3a-9b1e-2f6c5a4d3e21"),
        ("items" = Option<bool>, Query, description = "`false` leaves the item results out; \
            `true` by default."),
        openapi::ItemsLimit,
        ("offset" = Option<u32>, Query,
            description = "Item results to skip: the `next_offset` of the page before."),
    ),
    responses(
        (status = 200, description = "The operation; or an empty body (no content type) when \
            the namespace has no operation with this id.", body = openapi::Operation),
        (status = 400, response = openapi::BadRequest),
        openapi::KeyedRoute,
    ),
)]
pub async fn get(
    caller: Caller<ReadTimers>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryString,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid_field("id", "operation ids are UUIDs"))?;
    let mut params = query.params(&["items", "limit", "offset"]);
    let with_items = params
        .parse("items", |items| {
            items
                .parse::<bool>()
                .map_err(|_| "must be true or false".to_owned())
        })
        .unwrap_or(true);
    let limit = params.count("limit", DEFAULT_ITEMS_LIMIT, MAX_ITEMS_LIMIT) as i64;
    let offset = params
        .parse("offset", |offset| {
            offset
                .parse::<u32>()
                .map_err(|_| "must be a whole number, at least 0".to_owned())
        })
        .map_or(0, i64::from);
    params.finish()?;

    let client = state.db.connection().await?;
    let Some(operation) = state
        .db
        .bounded(operations::get(&**client, &caller.namespace, id))
        .await?
    else {
        return Ok(StatusCode::OK.into_response());
    };
    let mut body = operation.to_json();
    if with_items {
        // One more than asked for tells whether another page follows.
        let mut items = state
            .db
            .bounded(operations::items(&**client, id, offset, limit + 1))
            .await?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        body["items"] = items.iter().map(|item| item.to_json()).collect();
        if more {
            body["next_offset"] = json!(offset + limit);
        }
    }

    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `GET /v1/operations?limit=&cursor=`: the namespace's operations, newest first, without
/// item results. `next_cursor` is set while more may follow.
#[utoipa::path(
    get,
    path = "/v1/operations",
    operation_id = "list_operations",
    tag = "operations",
    summary = "List operations",
    description = "The namespace's operations, newest first, without item results. Finished \
        operations are kept for 7 days.",
    security(("bearer" = ["timers:read"])),
    params(
        openapi::OperationPageLimit,
        ("cursor" = Option<String>, Query, format = "uuid",
            description = "The `next_cursor` of the page before."),
    ),
    responses(
        (status = 200, description = "A page of operations.", body = openapi::OperationPage),
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
    let before = params.parse("cursor", |cursor| {
        Uuid::parse_str(cursor).map_err(|_| "is not a cursor this api returned".to_owned())
    });
    params.finish()?;

    let client = state.db.connection().await?;
    let found = state
        .db
        .bounded(operations::list(
            &**client,
            &caller.namespace,
            before,
            limit,
        ))
        .await?;

    let next_cursor = match found.last() {
        Some(last) if found.len() as i64 == limit => Some(last.id.to_string()),
        _ => None,
    };
    let body = json!({
        "operations": found.iter().map(Operation::to_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The items of a batch body, 1 to [`MAX_BATCH_ITEMS`] of them.
fn batch_items(body: Value) -> Result<Vec<Value>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::invalid_field(
            "",
            "expected a JSON array of timers",
        ));
    };
    check_batch_size("", items.len())?;
    Ok(items)
}

fn check_batch_size(field: &str, len: usize) -> Result<(), ApiError> {
    if (1..=MAX_BATCH_ITEMS).contains(&len) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("a batch holds 1 to {MAX_BATCH_ITEMS} items; this one has {len}"),
        ))
    }
}

/// Runs a batch's validation on a blocking thread: ten thousand schedules take long enough
/// to hold up the other requests of this runtime thread.
async fn validate_off_thread(
    validate: impl FnOnce() -> Result<OperationRequest, Vec<FieldError>> + Send + 'static,
) -> Result<OperationRequest, ApiError> {
    tokio::task::spawn_blocking(validate)
        .await
        .map_err(|err| ApiError::Internal(err.into()))?
        .map_err(ApiError::invalid_fields)
}

/// Remembers the first index of each id of a batch; a second use is an error.
#[derive(Default)]
struct SeenIds(HashMap<String, usize>);

impl SeenIds {
    fn check(&mut self, id: &str, index: usize, field: &str, errors: &mut Vec<FieldError>) {
        match self.0.entry(id.to_owned()) {
            Entry::Occupied(first) => errors.push(FieldError::new(
                field,
                format!("repeats the id of item [{}]", first.get()),
            )),
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
    }
}

/// Validates every item of a create batch. Items without an id get a generated one.
fn validate_creates(items: &[Value], limits: Limits) -> Result<OperationRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut seen = SeenIds::default();
    let mut valid = Vec::with_capacity(items.len());

    for (index, value) in items.iter().enumerate() {
        let at = format!("[{index}]");
        match NewTimer::from_json(value, limits) {
            Ok(new) => {
                let id = new.id.unwrap_or_else(generate_id);
                seen.check(&id, index, &format!("{at}.id"), &mut errors);
                valid.push(TimerItem::new(id, None, &new.definition));
            }
            Err(item_errors) => {
                errors.extend(item_errors.into_iter().map(|error| error.within(&at)));
            }
        }
    }

    if errors.is_empty() {
        Ok(OperationRequest::Create { items: valid })
    } else {
        Err(errors)
    }
}

/// Validates every item of a replace batch: a timer definition with an `id`, and an
/// optional `version` the timer must be at.
fn validate_replaces(items: &[Value], limits: Limits) -> Result<OperationRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut seen = SeenIds::default();
    let mut valid = Vec::with_capacity(items.len());

    for (index, value) in items.iter().enumerate() {
        let at = format!("[{index}]");
        let Some(object) = value.as_object() else {
            errors.push(FieldError::new(
                at,
                "must be a JSON object describing a timer",
            ));
            continue;
        };
        let mut definition: Map<String, Value> = object.clone();
        let version = match definition.remove("version") {
            None | Some(Value::Null) => None,
            Some(version) => match version.as_i64().filter(|version| *version >= 1) {
                Some(version) => Some(version),
                None => {
                    errors.push(FieldError::new(
                        format!("{at}.version"),
                        "must be a whole number of at least 1",
                    ));
                    None
                }
            },
        };
        if matches!(definition.get("id"), None | Some(Value::Null)) {
            errors.push(FieldError::new(
                format!("{at}.id"),
                "is required to replace a timer",
            ));
        }

        match NewTimer::from_json(&Value::Object(definition), limits) {
            Ok(new) => {
                if let Some(id) = new.id {
                    seen.check(&id, index, &format!("{at}.id"), &mut errors);
                    valid.push(TimerItem::new(id, version, &new.definition));
                }
            }
            Err(item_errors) => {
                errors.extend(item_errors.into_iter().map(|error| error.within(&at)));
            }
        }
    }

    if errors.is_empty() {
        Ok(OperationRequest::Replace { items: valid })
    } else {
        Err(errors)
    }
}

/// The ids of a delete body, `{"ids": [...]}`: 1 to [`MAX_BATCH_ITEMS`] distinct timer ids.
fn delete_ids(body: &Value) -> Result<Vec<String>, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "",
            "expected an object {\"ids\": [...]}",
        ));
    };
    let mut errors = Vec::new();
    for field in object.keys().filter(|field| *field != "ids") {
        errors.push(FieldError::new(field.clone(), "is not a field of a delete"));
    }
    let Some(Value::Array(values)) = object.get("ids") else {
        errors.push(FieldError::new("ids", "must be an array of timer ids"));
        return Err(ApiError::invalid_fields(errors));
    };
    check_batch_size("ids", values.len())?;

    let mut seen = SeenIds::default();
    let mut ids = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let field = format!("ids[{index}]");
        match value.as_str() {
            Some(id) => match validate_id(id) {
                Ok(()) => {
                    seen.check(id, index, &field, &mut errors);
                    ids.push(id.to_owned());
                }
                Err(detail) => errors.push(FieldError::new(field, detail)),
            },
            None => errors.push(FieldError::new(field, "must be a string")),
        }
    }

    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::invalid_fields(errors))
    }
}

/// Whether a request carries a body: a non-zero `Content-Length`, or a chunked one.
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.trim().parse::<u64>().ok())
        .is_some_and(|length| length > 0)
}

impl From<OperationError> for ApiError {
    fn from(err: OperationError) -> Self {
        match err {
            OperationError::Database(err) => err.into(),
            OperationError::Contended => ApiError::Unavailable(err.into()),
            OperationError::Unreadable { .. } => ApiError::Internal(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(id: Option<&str>) -> Value {
        let mut timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});
        if let Some(id) = id {
            timer["id"] = json!(id);
        }
        timer
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|error| error.field.as_str()).collect()
    }

    #[test]
    fn every_bad_item_is_named_by_its_index() {
        let mut items: Vec<Value> = (0..9).map(|_| timer(None)).collect();
        items[3]["schedule"] = json!({"at": "soon"});
        items[7] = json!("not a timer");

        let errors = validate_creates(&items, Limits::default()).unwrap_err();

        assert_eq!(fields(&errors), ["[3].schedule.at", "[7]"]);
    }

    #[test]
    fn items_without_an_id_get_distinct_generated_ids() {
        let items = vec![timer(None), timer(Some("a")), timer(None)];

        let Ok(OperationRequest::Create { items }) = validate_creates(&items, Limits::default())
        else {
            panic!("the batch is valid");
        };

        assert_eq!(items[1].id, "a");
        assert_ne!(items[0].id, items[2].id);
        assert_eq!(Uuid::parse_str(&items[0].id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn two_items_with_one_id_are_refused() {
        let items = vec![timer(Some("a")), timer(Some("b")), timer(Some("a"))];

        let errors = validate_creates(&items, Limits::default()).unwrap_err();

        assert_eq!(fields(&errors), ["[2].id"]);
        assert!(errors[0].detail.contains("[0]"));
    }

    #[test]
    fn a_replace_needs_an_id_and_takes_a_version() {
        let mut with_version = timer(Some("a"));
        with_version["version"] = json!(3);
        let mut bad_version = timer(Some("b"));
        bad_version["version"] = json!(0);
        let items = vec![with_version.clone(), timer(None), bad_version];

        let errors = validate_replaces(&items, Limits::default()).unwrap_err();
        assert_eq!(fields(&errors), ["[1].id", "[2].version"]);

        let Ok(OperationRequest::Replace { items }) =
            validate_replaces(&[with_version], Limits::default())
        else {
            panic!("the batch is valid");
        };
        assert_eq!((items[0].id.as_str(), items[0].version), ("a", Some(3)));
    }

    #[test]
    fn a_delete_names_distinct_valid_ids() {
        assert_eq!(delete_ids(&json!({"ids": ["a", "b"]})).unwrap(), ["a", "b"]);
        for body in [
            json!({"ids": []}),
            json!({"ids": ["a", "a"]}),
            json!({"ids": ["no spaces"]}),
            json!({"ids": ["a"], "group": "g"}),
            json!(["a"]),
        ] {
            assert!(delete_ids(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn a_batch_holds_one_to_the_maximum_of_items() {
        assert!(batch_items(json!([])).is_err());
        assert!(batch_items(json!({"not": "an array"})).is_err());
        let too_many = Value::Array(vec![json!({}); MAX_BATCH_ITEMS + 1]);
        assert!(batch_items(too_many).is_err());
        assert!(batch_items(json!([{}])).is_ok());
    }
}
