//! Batch operations: the `operations` and `operation_items` tables (accepting an operation,
//! reading its status and per-item results, claiming, finishing and failing it), and the
//! set-based statements that apply a batch to `timers`, each one statement however many items
//! the batch holds.
//!
//! An operation's request holds its items as validated by the api, with generated ids filled
//! in, so that applying it again after a failed attempt gives the same result. A worker
//! applies an operation in one transaction that holds the operation's row lock: it either
//! commits every item's effect with every item's result, or nothing.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_postgres::types::Json;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::timer::TimerDefinition;

/// The columns of an operation, in the order [`operation_from_row`] reads them.
macro_rules! operation_columns {
    () => {
        "id, namespace, kind, status, item_count, attempts, counts, error, submitted_at,
         started_at, finished_at"
    };
}

/// Why an operation could not be stored or read.
#[derive(Debug, Error)]
pub enum OperationError {
    /// The query failed or the connection broke.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// The row holds a value this version cannot read; the schema's checks should prevent it.
    #[error("stored operation {id} cannot be read: {detail}")]
    Unreadable { id: Uuid, detail: String },
    /// An idempotency key's operation vanished (retention) each time it was looked up.
    #[error("the operation of an idempotency key was deleted while it was being read")]
    Contended,
}

/// What an operation does, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Create,
    Replace,
    Delete,
    Pause,
    Resume,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Create => "create",
            OperationKind::Replace => "replace",
            OperationKind::Delete => "delete",
            OperationKind::Pause => "pause",
            OperationKind::Resume => "resume",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    /// Accepted and stored; no worker has started it.
    Pending,
    /// A worker started it. Its effects become visible all at once when it succeeds; a
    /// worker that died while applying it left nothing behind, and another one takes it.
    Running,
    /// Applied: every item has its result.
    Succeeded,
    /// Not applied; `error` says why.
    Failed,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "pending",
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
        }
    }
}

impl FromStr for OperationStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(OperationStatus::Pending),
            "running" => Ok(OperationStatus::Running),
            "succeeded" => Ok(OperationStatus::Succeeded),
            "failed" => Ok(OperationStatus::Failed),
            other => Err(format!("unknown operation status {other:?}")),
        }
    }
}

/// What happened to one item of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A create stored a new timer.
    Created,
    /// A create met a timer with this id and the same definition: a safe retry.
    Existing,
    /// A replace stored the new definition.
    Replaced,
    Deleted,
    Paused,
    Resumed,
    /// No timer has this id in the namespace.
    NotFound,
    /// A create met a timer with this id and another definition, or a replace named a
    /// version the timer is not at.
    Conflict,
    /// The item could not be applied; its error says why.
    Failed,
}

impl Outcome {
    /// Every outcome, in the order counts are shown.
    pub const ALL: [Outcome; 9] = [
        Outcome::Created,
        Outcome::Existing,
        Outcome::Replaced,
        Outcome::Deleted,
        Outcome::Paused,
        Outcome::Resumed,
        Outcome::NotFound,
        Outcome::Conflict,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Existing => "existing",
            Outcome::Replaced => "replaced",
            Outcome::Deleted => "deleted",
            Outcome::Paused => "paused",
            Outcome::Resumed => "resumed",
            Outcome::NotFound => "not_found",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| format!("unknown item outcome {text:?}"))
    }
}

/// One timer of a create or replace batch, as it will be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerItem {
    pub id: String,
    /// For a replace: the version the timer must be at, if the client named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub group: Option<String>,
    /// The canonical schedule JSON.
    pub schedule: Value,
    pub routing_key: String,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
    /// The definition's `expire_after`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_ms: Option<i64>,
}

impl TimerItem {
    /// The item that stores `definition` under `id`, at `version` for a replace.
    pub fn new(id: String, version: Option<i64>, definition: &TimerDefinition) -> TimerItem {
        TimerItem {
            id,
            version,
            group: definition.group.clone(),
            schedule: definition.schedule.to_json(),
            routing_key: definition.routing_key.clone(),
            payload: definition.payload.clone(),
            headers: definition.headers.clone(),
            expire_after_ms: definition.expire_after.map(|span| span.as_millis()),
        }
    }
}

/// What an operation was asked to do, its items validated. Stored as the operation's
/// `request` and read back by the worker that applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperationRequest {
    /// Create each timer unless its id is taken.
    Create { items: Vec<TimerItem> },
    /// Replace the definition of each existing timer.
    Replace { items: Vec<TimerItem> },
    /// Delete the timers with these ids.
    DeleteIds { ids: Vec<String> },
    /// Delete every timer of a group.
    DeleteGroup { group: String },
    /// Pause every scheduled timer of a group.
    PauseGroup { group: String },
    /// Resume every paused timer of a group.
    ResumeGroup { group: String },
}

impl OperationRequest {
    pub fn kind(&self) -> OperationKind {
        match self {
            OperationRequest::Create { .. } => OperationKind::Create,
            OperationRequest::Replace { .. } => OperationKind::Replace,
            OperationRequest::DeleteIds { .. } | OperationRequest::DeleteGroup { .. } => {
                OperationKind::Delete
            }
            OperationRequest::PauseGroup { .. } => OperationKind::Pause,
            OperationRequest::ResumeGroup { .. } => OperationKind::Resume,
        }
    }

    /// How many items the request names; a group action's items are only known once it is
    /// applied.
    pub fn item_count(&self) -> usize {
        match self {
            OperationRequest::Create { items } | OperationRequest::Replace { items } => items.len(),
            OperationRequest::DeleteIds { ids } => ids.len(),
            OperationRequest::DeleteGroup { .. }
            | OperationRequest::PauseGroup { .. }
            | OperationRequest::ResumeGroup { .. } => 0,
        }
    }
}

/// A stored operation, without its request and items.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub id: Uuid,
    pub namespace: String,
    pub kind: String,
    pub status: OperationStatus,
    pub item_count: i32,
    /// How many times a worker started applying it.
    pub attempts: i32,
    /// Items per outcome, once finished.
    pub counts: Option<Value>,
    pub error: Option<String>,
    pub submitted_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl Operation {
    /// The operation as the HTTP API shows it, without items. Counts list every outcome,
    /// zero until the operation has finished.
    pub fn to_json(&self) -> Value {
        let mut counts = outcome_counts(&[]);
        if let Some(Value::Object(stored)) = &self.counts {
            counts.extend(stored.clone());
        }
        let mut body = json!({
            "id": self.id,
            "kind": self.kind,
            "status": self.status.as_str(),
            "item_count": self.item_count,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "counts": counts,
        });
        if let Some(error) = &self.error {
            body["error"] = Value::String(error.clone());
        }
        body
    }
}

/// The result of one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    /// The item's position in the request; for a group action, its position in id order.
    pub index: i32,
    pub timer_id: Option<String>,
    pub outcome: Outcome,
    pub error: Option<String>,
}

impl ItemResult {
    pub fn new(index: usize, timer_id: &str, outcome: Outcome) -> ItemResult {
        ItemResult {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            timer_id: Some(timer_id.to_owned()),
            outcome,
            error: None,
        }
    }

    pub fn with_error(mut self, error: impl Into<String>) -> ItemResult {
        self.error = Some(error.into());
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "index": self.index,
            "id": self.timer_id,
            "outcome": self.outcome.as_str(),
            "error": self.error,
        })
    }
}

/// `{"created": n, ...}` for every outcome, zeros included.
pub fn outcome_counts(results: &[ItemResult]) -> serde_json::Map<String, Value> {
    let mut counts: BTreeMap<Outcome, u64> = Outcome::ALL.iter().map(|o| (*o, 0)).collect();
    for result in results {
        *counts.entry(result.outcome).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(outcome, count)| (outcome.as_str().to_owned(), json!(count)))
        .collect()
}

/// The fingerprint of a request as the client sent it, which an idempotency key is bound
/// to: the same key with another fingerprint is a different request.
pub fn request_hash(kind: OperationKind, client_request: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b"\n");
    // Objects serialize with their keys sorted, so equal JSON values hash alike.
    hasher.update(client_request.to_string().as_bytes());
    hasher.finalize().to_vec()
}

/// An operation the api is about to store.
#[derive(Debug)]
pub struct NewOperation<'a> {
    pub id: Uuid,
    pub namespace: &'a str,
    pub request: &'a OperationRequest,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a [u8],
}

/// What storing an operation found.
#[derive(Debug)]
pub enum Submitted {
    /// Stored as a new operation.
    Accepted(Operation),
    /// The idempotency key was used before, for this operation; `same_request` says whether
    /// that request had the same fingerprint.
    Existing {
        operation: Operation,
        same_request: bool,
    },
}

/// How many times a submit looks for the operation holding its idempotency key, which
/// retention may delete between the insert and the read.
const MAX_SUBMIT_ATTEMPTS: usize = 3;

/// Stores an operation, pending, unless its idempotency key was used in the namespace
/// before, in which case the operation that used it is returned. Inserting the operation
/// wakes the workers (the schema's trigger).
pub async fn submit(
    client: &impl GenericClient,
    new: &NewOperation<'_>,
) -> Result<Submitted, OperationError> {
    let item_count = i32::try_from(new.request.item_count()).unwrap_or(i32::MAX);
    for _ in 0..MAX_SUBMIT_ATTEMPTS {
        let inserted = client
            .query_opt(
                concat!(
                    "insert into operations (id, namespace, kind, idempotency_key,
                                             request_hash, request, item_count)
                     values ($1, $2, $3, $4, $5, $6, $7)
                     on conflict (namespace, idempotency_key) do nothing
                     returning ",
                    operation_columns!()
                ),
                &[
                    &new.id,
                    &new.namespace,
                    &new.request.kind().as_str(),
                    &new.idempotency_key,
                    &new.request_hash,
                    &Json(new.request),
                    &item_count,
                ],
            )
            .await?;
        if let Some(row) = inserted {
            return Ok(Submitted::Accepted(operation_from_row(&row)?));
        }

        let Some(key) = new.idempotency_key else {
            continue;
        };
        let existing = client
            .query_opt(
                concat!(
                    "select ",
                    operation_columns!(),
                    ", request_hash
                     from operations
                     where namespace = $1
                       and idempotency_key = $2"
                ),
                &[&new.namespace, &key],
            )
            .await?;
        if let Some(row) = existing {
            let stored_hash: Option<Vec<u8>> = row.try_get(11)?;
            return Ok(Submitted::Existing {
                operation: operation_from_row(&row)?,
                same_request: stored_hash.as_deref() == Some(new.request_hash),
            });
        }
    }
    Err(OperationError::Contended)
}

/// The operation `id` of `namespace`, if there is one.
pub async fn get(
    client: &impl GenericClient,
    namespace: &str,
    id: Uuid,
) -> Result<Option<Operation>, OperationError> {
    let row = client
        .query_opt(
            concat!(
                "select ",
                operation_columns!(),
                " from operations
                 where namespace = $1
                   and id = $2"
            ),
            &[&namespace, &id],
        )
        .await?;
    row.as_ref().map(operation_from_row).transpose()
}

/// The operations of `namespace`, newest first, starting after `before` (an id: operation
/// ids are UUIDv7, which sort by time). At most `limit`.
pub async fn list(
    client: &impl GenericClient,
    namespace: &str,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Operation>, OperationError> {
    let rows = client
        .query(
            concat!(
                "select ",
                operation_columns!(),
                " from operations
                 where namespace = $1
                   and ($2::uuid is null or id < $2)
                 order by id desc
                 limit $3"
            ),
            &[&namespace, &before, &limit],
        )
        .await?;
    rows.iter().map(operation_from_row).collect()
}

/// The results of an operation's items, by index, `limit` of them from `offset`.
pub async fn items(
    client: &impl GenericClient,
    operation_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<ItemResult>, OperationError> {
    let rows = client
        .query(
            "select item_index, timer_id, outcome, error
             from operation_items
             where operation_id = $1
               and item_index >= $2
             order by item_index
             limit $3",
            &[
                &operation_id,
                &i32::try_from(offset).unwrap_or(i32::MAX),
                &limit,
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let outcome: String = row.try_get(2)?;
            Ok(ItemResult {
                index: row.try_get(0)?,
                timer_id: row.try_get(1)?,
                outcome: outcome
                    .parse()
                    .map_err(|detail| OperationError::Unreadable {
                        id: operation_id,
                        detail,
                    })?,
                error: row.try_get(3)?,
            })
        })
        .collect()
}

/// An operation a worker has started: marked running and committed, not yet locked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Started {
    pub id: Uuid,
    /// This start's number, counting the starts of workers that died applying it.
    pub attempts: i32,
}

/// Most earlier unfinished operations of its namespace that a create may be applied
/// alongside; with more ahead of it, it waits its turn.
pub const MAX_CREATES_AHEAD: i64 = 3;

/// Marks the next operation to apply as running and returns it, unless none may start now.
/// An operation may start when every earlier operation of its namespace has finished, or,
/// for a create, when the unfinished ones ahead of it are creates (at most
/// [`MAX_CREATES_AHEAD`]) whose timer ids are all different from its own: creates of
/// different ids give the same results in any order, so they may be applied at once. The
/// first kind is preferred. No worker may be applying it already; a `running` operation
/// whose worker died is started again. Commits its own transaction, so that `running` is
/// visible while the operation is applied.
pub async fn start_next(
    client: &mut impl GenericClient,
) -> Result<Option<Started>, OperationError> {
    let transaction = client.transaction().await?;
    let Some((candidate, ahead)) = next_candidate(&transaction).await? else {
        transaction.rollback().await?;
        return Ok(None);
    };
    if !ahead.is_empty() && !ids_are_disjoint(&transaction, candidate, &ahead).await? {
        // It waits for the operations ahead; whoever finishes the last of them starts it.
        transaction.rollback().await?;
        return Ok(None);
    }

    let row = transaction
        .query_one(
            "update operations
             set status = 'running',
                 started_at = coalesce(started_at, now()),
                 attempts = attempts + 1
             where id = $1
             returning attempts",
            &[&candidate],
        )
        .await?;
    let started = Started {
        id: candidate,
        attempts: row.try_get(0)?,
    };
    transaction.commit().await?;
    Ok(Some(started))
}

/// The earliest operation that may start, locked, with the unfinished operations of its
/// namespace ahead of it (none, or creates ahead of a create). Whether the ids of those
/// creates are disjoint is left to the caller.
async fn next_candidate(
    client: &impl GenericClient,
) -> Result<Option<(Uuid, Vec<Uuid>)>, OperationError> {
    let row = client
        .query_opt(
            "select candidate.id, coalesce(ahead.ids, '{}')
             from operations as candidate
             cross join lateral (
                 select array_agg(earlier.id) as ids,
                        count(*) as count,
                        coalesce(bool_and(earlier.kind = 'create'), true) as all_creates
                 from (
                     select id, kind
                     from operations as earlier
                     where earlier.namespace = candidate.namespace
                       and earlier.status in ('pending', 'running')
                       and (earlier.submitted_at, earlier.id)
                           < (candidate.submitted_at, candidate.id)
                     order by earlier.submitted_at, earlier.id
                     limit $1::bigint + 1
                 ) as earlier
             ) as ahead
             where candidate.status in ('pending', 'running')
               and (ahead.count = 0
                    or (candidate.kind = 'create'
                        and ahead.all_creates
                        and ahead.count <= $1))
             order by ahead.count > 0, candidate.submitted_at, candidate.id
             limit 1
             for update of candidate skip locked",
            &[&MAX_CREATES_AHEAD],
        )
        .await?;
    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}

/// Whether no timer id of the create `candidate` is also an id of one of the creates
/// `ahead`. Reads only the ids of the stored requests.
async fn ids_are_disjoint(
    client: &impl GenericClient,
    candidate: Uuid,
    ahead: &[Uuid],
) -> Result<bool, OperationError> {
    /// The ids of a stored create request; everything else in it is skipped.
    #[derive(Deserialize)]
    struct CreateIds {
        items: Vec<ItemId>,
    }
    #[derive(Deserialize)]
    struct ItemId {
        id: String,
    }

    let rows = client
        .query(
            "select id, request
             from operations
             where id = any($1)",
            &[&[&[candidate], ahead].concat()],
        )
        .await?;
    let mut candidate_ids = HashSet::new();
    let mut ahead_ids = Vec::new();
    for row in &rows {
        let id: Uuid = row.try_get(0)?;
        // A request that cannot be read is failed by whoever applies it; until then the
        // candidate waits, as it would behind any operation.
        let Ok(Json(request)) = row.try_get::<_, Json<CreateIds>>(1) else {
            return Ok(false);
        };
        if id == candidate {
            candidate_ids.extend(request.items.into_iter().map(|item| item.id));
        } else {
            ahead_ids.extend(request.items.into_iter().map(|item| item.id));
        }
    }
    Ok(!ahead_ids.iter().any(|id| candidate_ids.contains(id)))
}

/// A started operation, locked by the applying transaction.
#[derive(Debug, Clone)]
pub struct Locked {
    pub id: Uuid,
    pub namespace: String,
    /// The request, or why it cannot be read.
    pub request: Result<OperationRequest, String>,
    /// The database clock when the operation was accepted: the instant its timers are
    /// defined at.
    pub submitted_at: Timestamp,
}

/// Locks the started operation for the applying transaction, unless another worker started
/// it since (its `attempts` moved on) or holds it.
pub async fn lock_started(
    client: &impl GenericClient,
    started: Started,
) -> Result<Option<Locked>, OperationError> {
    let row = client
        .query_opt(
            "select namespace, request, submitted_at
             from operations
             where id = $1
               and status = 'running'
               and attempts = $2
             for update skip locked",
            &[&started.id, &started.attempts],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // Read straight from the stored text into the request: a request of thousands of items
    // is never built as a generic JSON value first.
    let request = row
        .try_get::<_, Json<OperationRequest>>(1)
        .map(|Json(request)| request)
        .map_err(|err| err.to_string());
    Ok(Some(Locked {
        id: started.id,
        namespace: row.try_get(0)?,
        request,
        submitted_at: row.try_get(2)?,
    }))
}

/// Records every item's result and marks the operation succeeded, in the applying
/// transaction. The item rows are written in one statement.
pub async fn finish(
    client: &impl GenericClient,
    operation_id: Uuid,
    results: &[ItemResult],
) -> Result<(), OperationError> {
    let indexes: Vec<i32> = results.iter().map(|result| result.index).collect();
    let timer_ids: Vec<Option<&str>> = results.iter().map(|r| r.timer_id.as_deref()).collect();
    let outcomes: Vec<&str> = results.iter().map(|r| r.outcome.as_str()).collect();
    let errors: Vec<Option<&str>> = results.iter().map(|r| r.error.as_deref()).collect();
    client
        .execute(
            "insert into operation_items (operation_id, item_index, timer_id, outcome, error)
             select $1, item_index, timer_id, outcome, error
             from unnest($2::integer[], $3::text[], $4::text[], $5::text[])
                  as item (item_index, timer_id, outcome, error)",
            &[&operation_id, &indexes, &timer_ids, &outcomes, &errors],
        )
        .await?;

    let counts = Value::Object(outcome_counts(results));
    let item_count = i32::try_from(results.len()).unwrap_or(i32::MAX);
    client
        .execute(
            "update operations
             set status = 'succeeded',
                 finished_at = now(),
                 counts = $2,
                 item_count = $3,
                 error = null
             where id = $1",
            &[&operation_id, &counts, &item_count],
        )
        .await?;
    Ok(())
}

/// Marks an operation failed with `error`, unless it has finished. Nothing of it is applied.
/// Waits for a worker that holds it.
pub async fn fail(
    client: &impl GenericClient,
    operation_id: Uuid,
    error: &str,
) -> Result<(), OperationError> {
    client
        .execute(
            "update operations
             set status = 'failed',
                 finished_at = now(),
                 error = $2
             where id = $1
               and status in ('pending', 'running')",
            &[&operation_id, &error],
        )
        .await?;
    Ok(())
}

fn operation_from_row(row: &Row) -> Result<Operation, OperationError> {
    let id: Uuid = row.try_get(0)?;
    let status: String = row.try_get(3)?;
    Ok(Operation {
        id,
        namespace: row.try_get(1)?,
        kind: row.try_get(2)?,
        status: status
            .parse()
            .map_err(|detail| OperationError::Unreadable { id, detail })?,
        item_count: row.try_get(4)?,
        attempts: row.try_get(5)?,
        counts: row.try_get(6)?,
        error: row.try_get(7)?,
        submitted_at: row.try_get(8)?,
        started_at: row.try_get(9)?,
        finished_at: row.try_get(10)?,
    })
}

/// A timer row a batch writes: a create's new timer or a replace's new definition.
#[derive(Debug, Clone)]
pub struct TimerRow<'a> {
    pub item: &'a TimerItem,
    pub uid: Uuid,
    /// The first fire of the schedule defined at the operation's submission; `None` when it
    /// has nothing to fire.
    pub next_fire_at: Option<Timestamp>,
    /// The schedule's `max_fires`: a replaced timer that fired that often completes.
    pub max_fires: Option<i64>,
}

impl TimerRow<'_> {
    fn state(&self) -> &'static str {
        match self.next_fire_at {
            Some(_) => "scheduled",
            None => "completed",
        }
    }
}

/// The columns of timer rows, one array each, as `unnest` takes them.
struct TimerColumns<'a> {
    ids: Vec<&'a str>,
    uids: Vec<Uuid>,
    groups: Vec<Option<&'a str>>,
    schedules: Vec<&'a Value>,
    routing_keys: Vec<&'a str>,
    payloads: Vec<&'a Value>,
    headers: Vec<Value>,
    expire_after_ms: Vec<Option<i64>>,
    states: Vec<&'static str>,
    next_fire_at: Vec<Option<Timestamp>>,
    versions: Vec<Option<i64>>,
    max_fires: Vec<Option<i64>>,
}

impl<'a> TimerColumns<'a> {
    fn of(rows: &[TimerRow<'a>]) -> TimerColumns<'a> {
        TimerColumns {
            ids: rows.iter().map(|row| row.item.id.as_str()).collect(),
            uids: rows.iter().map(|row| row.uid).collect(),
            groups: rows.iter().map(|row| row.item.group.as_deref()).collect(),
            schedules: rows.iter().map(|row| &row.item.schedule).collect(),
            routing_keys: rows.iter().map(|r| r.item.routing_key.as_str()).collect(),
            payloads: rows.iter().map(|row| &row.item.payload).collect(),
            headers: rows.iter().map(|row| json!(row.item.headers)).collect(),
            expire_after_ms: rows.iter().map(|row| row.item.expire_after_ms).collect(),
            states: rows.iter().map(TimerRow::state).collect(),
            next_fire_at: rows.iter().map(|row| row.next_fire_at).collect(),
            versions: rows.iter().map(|row| row.item.version).collect(),
            max_fires: rows.iter().map(|row| row.max_fires).collect(),
        }
    }
}

/// Inserts the timers whose ids are free in `namespace`, defined at `defined_at` (their
/// `created_at`), and returns the ids it inserted. Rows whose id is taken are left as they
/// are. One statement, however many rows.
pub async fn insert_timers(
    client: &impl GenericClient,
    namespace: &str,
    defined_at: Timestamp,
    rows: &[TimerRow<'_>],
) -> Result<Vec<String>, OperationError> {
    let columns = TimerColumns::of(rows);
    let inserted = client
        .query(
            "insert into timers (namespace, id, uid, group_name, schedule, routing_key, payload,
                                 headers, expire_after_ms, state, next_fire_at, created_at,
                                 updated_at)
             select $1, id, uid, group_name, schedule, routing_key, payload, headers,
                    expire_after_ms, state, next_fire_at, $2, $2
             from unnest($3::text[], $4::uuid[], $5::text[], $6::jsonb[], $7::text[],
                         $8::jsonb[], $9::jsonb[], $10::bigint[], $11::text[],
                         $12::timestamptz[])
                  as item (id, uid, group_name, schedule, routing_key, payload, headers,
                           expire_after_ms, state, next_fire_at)
             on conflict (namespace, id) do nothing
             returning id",
            &[
                &namespace,
                &defined_at,
                &columns.ids,
                &columns.uids,
                &columns.groups,
                &columns.schedules,
                &columns.routing_keys,
                &columns.payloads,
                &columns.headers,
                &columns.expire_after_ms,
                &columns.states,
                &columns.next_fire_at,
            ],
        )
        .await?;
    Ok(inserted.iter().map(|row| row.get(0)).collect())
}

/// For each row whose id exists in `namespace`: its id and whether the stored timer has the
/// same definition (group, schedule, routing key, payload, headers, expire_after). Ids with
/// no timer are left out. One statement.
pub async fn compare_definitions(
    client: &impl GenericClient,
    namespace: &str,
    rows: &[TimerRow<'_>],
) -> Result<Vec<(String, bool)>, OperationError> {
    let columns = TimerColumns::of(rows);
    let found = client
        .query(
            "select timers.id,
                    timers.group_name is not distinct from item.group_name
                    and timers.schedule = item.schedule
                    and timers.routing_key = item.routing_key
                    and timers.payload = item.payload
                    and timers.headers = item.headers
                    and timers.expire_after_ms is not distinct from item.expire_after_ms
             from unnest($2::text[], $3::text[], $4::jsonb[], $5::text[], $6::jsonb[],
                         $7::jsonb[], $8::bigint[])
                  as item (id, group_name, schedule, routing_key, payload, headers,
                           expire_after_ms)
             join timers
               on timers.namespace = $1
              and timers.id = item.id",
            &[
                &namespace,
                &columns.ids,
                &columns.groups,
                &columns.schedules,
                &columns.routing_keys,
                &columns.payloads,
                &columns.headers,
                &columns.expire_after_ms,
            ],
        )
        .await?;
    Ok(found.iter().map(|row| (row.get(0), row.get(1))).collect())
}

// A timer's own state and slot are `state` and `next_fire_at`, except while a trigger is
// pending (`deferred_state` is set): the row is then scheduled at the trigger instant and
// `deferred_state` and `deferred_next_fire_at` hold them (see `store::timers`). The batch
// statements below read and write the timer's own state and slot accordingly.

/// Replaces the definition of each timer of `namespace` that exists and, where the item
/// names a version, is at that version; returns the ids it replaced. As a single replace
/// does ([`crate::lifecycle::replace`]): the timer keeps its incarnation (`uid`) and fire
/// count, starts its new schedule at the row's `next_fire_at` (completing if its
/// `max_fires` is used up), stays paused if it was paused, loses any failure, and its
/// version goes up by one. One statement.
pub async fn replace_timers(
    client: &impl GenericClient,
    namespace: &str,
    rows: &[TimerRow<'_>],
) -> Result<Vec<String>, OperationError> {
    let columns = TimerColumns::of(rows);
    let replaced = client
        .query(
            "with item (id, version, group_name, schedule, routing_key, payload, headers,
                        expire_after_ms, max_fires, next_fire_at) as (
                 select *
                 from unnest($2::text[], $3::bigint[], $4::text[], $5::jsonb[], $6::text[],
                             $7::jsonb[], $8::jsonb[], $9::bigint[], $10::bigint[],
                             $11::timestamptz[])
             ),
             target as (
                 select timers.id,
                        timers.deferred_state is not null as triggered,
                        coalesce(timers.deferred_state, timers.state) as own_state,
                        case
                            when timers.fire_count >= item.max_fires then null
                            else item.next_fire_at
                        end as next_fire_at
                 from item
                 join timers
                   on timers.namespace = $1
                  and timers.id = item.id
                 where item.version is null
                    or timers.version = item.version
                 for update of timers
             ),
             own as (
                 select id,
                        triggered,
                        next_fire_at,
                        case
                            when next_fire_at is null then 'completed'
                            when own_state = 'paused' then 'paused'
                            else 'scheduled'
                        end as state
                 from target
             )
             update timers
             set group_name = item.group_name,
                 schedule = item.schedule,
                 routing_key = item.routing_key,
                 payload = item.payload,
                 headers = item.headers,
                 expire_after_ms = item.expire_after_ms,
                 state = case when own.triggered then timers.state else own.state end,
                 next_fire_at = case
                                    when own.triggered then timers.next_fire_at
                                    else own.next_fire_at
                                end,
                 deferred_state = case when own.triggered then own.state end,
                 deferred_next_fire_at = case when own.triggered then own.next_fire_at end,
                 failure_reason = null,
                 version = timers.version + 1,
                 updated_at = now()
             from own
             join item on item.id = own.id
             where timers.namespace = $1
               and timers.id = own.id
             returning timers.id",
            &[
                &namespace,
                &columns.ids,
                &columns.versions,
                &columns.groups,
                &columns.schedules,
                &columns.routing_keys,
                &columns.payloads,
                &columns.headers,
                &columns.expire_after_ms,
                &columns.max_fires,
                &columns.next_fire_at,
            ],
        )
        .await?;
    Ok(replaced.iter().map(|row| row.get(0)).collect())
}

/// The version of each of `ids` that has a timer in `namespace`.
pub async fn versions(
    client: &impl GenericClient,
    namespace: &str,
    ids: &[&str],
) -> Result<Vec<(String, i64)>, OperationError> {
    let rows = client
        .query(
            "select id, version
             from timers
             where namespace = $1
               and id = any($2)",
            &[&namespace, &ids],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Deletes the timers of `namespace` with these ids and returns the ids it deleted.
pub async fn delete_ids(
    client: &impl GenericClient,
    namespace: &str,
    ids: &[String],
) -> Result<Vec<String>, OperationError> {
    let rows = client
        .query(
            "delete from timers
             where namespace = $1
               and id = any($2)
             returning id",
            &[&namespace, &ids],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Deletes every timer of a group of `namespace` and returns their ids.
pub async fn delete_group(
    client: &impl GenericClient,
    namespace: &str,
    group: &str,
) -> Result<Vec<String>, OperationError> {
    let rows = client
        .query(
            "delete from timers
             where namespace = $1
               and group_name = $2
             returning id",
            &[&namespace, &group],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Pauses every scheduled timer of a group of `namespace` and returns their ids. A paused
/// timer keeps its slot: the one it was waiting for, from which it resumes. A timer a
/// worker is firing is paused once that fire is recorded, from its next slot.
pub async fn pause_group(
    client: &impl GenericClient,
    namespace: &str,
    group: &str,
) -> Result<Vec<String>, OperationError> {
    let rows = client
        .query(
            "update timers
             set state = case when deferred_state is null then 'paused' else state end,
                 deferred_state = case when deferred_state is null then null else 'paused' end,
                 version = version + 1,
                 updated_at = now()
             where namespace = $1
               and group_name = $2
               and coalesce(deferred_state, state) = 'scheduled'
             returning id",
            &[&namespace, &group],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A paused timer about to be resumed, locked by the resuming transaction.
#[derive(Debug, Clone)]
pub struct PausedTimer {
    pub id: String,
    pub schedule: Value,
    /// The slot it was waiting for when it was paused.
    pub slot: Option<Timestamp>,
}

/// Locks every paused timer of a group of `namespace`, in id order, and returns them with
/// the database's now, the instant they resume at.
pub async fn lock_paused_group(
    client: &impl GenericClient,
    namespace: &str,
    group: &str,
) -> Result<(Vec<PausedTimer>, Timestamp), OperationError> {
    let rows = client
        .query(
            "select id,
                    schedule,
                    case
                        when deferred_state is null then next_fire_at
                        else deferred_next_fire_at
                    end
             from timers
             where namespace = $1
               and group_name = $2
               and coalesce(deferred_state, state) = 'paused'
             order by id
             for update",
            &[&namespace, &group],
        )
        .await?;
    let now: Timestamp = client.query_one("select now()", &[]).await?.try_get(0)?;
    let paused = rows
        .iter()
        .map(|row| PausedTimer {
            id: row.get(0),
            schedule: row.get(1),
            slot: row.get(2),
        })
        .collect();
    Ok((paused, now))
}

/// A paused timer's next fire once resumed: `None` completes it.
#[derive(Debug, Clone)]
pub struct Resumed {
    pub id: String,
    pub next_fire_at: Option<Timestamp>,
}

/// Resumes timers locked by [`lock_paused_group`]. One statement.
pub async fn resume_timers(
    client: &impl GenericClient,
    namespace: &str,
    resumed: &[Resumed],
) -> Result<u64, OperationError> {
    let ids: Vec<&str> = resumed.iter().map(|timer| timer.id.as_str()).collect();
    let next: Vec<Option<Timestamp>> = resumed.iter().map(|timer| timer.next_fire_at).collect();
    let states: Vec<&str> = resumed
        .iter()
        .map(|timer| match timer.next_fire_at {
            Some(_) => "scheduled",
            None => "completed",
        })
        .collect();
    Ok(client
        .execute(
            "update timers
             set state = case
                             when timers.deferred_state is null then item.state
                             else timers.state
                         end,
                 next_fire_at = case
                                    when timers.deferred_state is null then item.next_fire_at
                                    else timers.next_fire_at
                                end,
                 deferred_state = case
                                      when timers.deferred_state is not null then item.state
                                  end,
                 deferred_next_fire_at = case
                                             when timers.deferred_state is not null
                                             then item.next_fire_at
                                         end,
                 version = timers.version + 1,
                 updated_at = now()
             from unnest($2::text[], $3::text[], $4::timestamptz[])
                  as item (id, state, next_fire_at)
             where timers.namespace = $1
               and timers.id = item.id",
            &[&namespace, &ids, &states, &next],
        )
        .await?)
}

/// The timers of one group, counted by state.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCounts {
    pub group: String,
    pub by_state: BTreeMap<String, i64>,
}

/// The groups of `namespace` after `after` in name order, at most `limit`, each with its
/// timers counted by state. Both the page of names and the counts walk the group index
/// over the timers of the page's groups, so a page costs in proportion to how many timers
/// its groups hold.
pub async fn group_counts(
    client: &impl GenericClient,
    namespace: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<GroupCounts>, OperationError> {
    let rows = client
        .query(
            "with page as (
                 select distinct group_name
                 from timers
                 where namespace = $1
                   and group_name is not null
                   and ($2::text is null or group_name > $2)
                 order by group_name
                 limit $3
             )
             select timers.group_name, timers.state, count(*)
             from timers
             join page on page.group_name = timers.group_name
             where timers.namespace = $1
             group by timers.group_name, timers.state
             order by timers.group_name",
            &[&namespace, &after, &limit],
        )
        .await?;
    let mut groups: Vec<GroupCounts> = Vec::new();
    for row in &rows {
        let group: String = row.get(0);
        if groups.last().is_none_or(|last| last.group != group) {
            groups.push(GroupCounts {
                group: group.clone(),
                by_state: BTreeMap::new(),
            });
        }
        if let Some(last) = groups.last_mut() {
            last.by_state.insert(row.get(1), row.get(2));
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_it_was_stored() {
        let request = OperationRequest::Replace {
            items: vec![TimerItem {
                id: "a".to_owned(),
                version: Some(3),
                group: None,
                schedule: json!({"after": "1s"}),
                routing_key: "k".to_owned(),
                payload: json!({"n": 1}),
                headers: BTreeMap::from([("h".to_owned(), "v".to_owned())]),
                expire_after_ms: Some(30_000),
            }],
        };
        let stored = serde_json::to_value(&request).unwrap();
        assert_eq!(stored["action"], "replace");
        let read: OperationRequest = serde_json::from_value(stored).unwrap();
        assert_eq!(read, request);
        assert_eq!(read.kind(), OperationKind::Replace);
    }

    #[test]
    fn counts_name_every_outcome_with_zeros() {
        let results = [
            ItemResult::new(0, "a", Outcome::Created),
            ItemResult::new(1, "b", Outcome::Created),
            ItemResult::new(2, "c", Outcome::NotFound),
        ];
        let counts = outcome_counts(&results);
        assert_eq!(counts["created"], 2);
        assert_eq!(counts["not_found"], 1);
        assert_eq!(counts["conflict"], 0);
        assert_eq!(counts.len(), Outcome::ALL.len());
    }

    #[test]
    fn equal_requests_hash_alike_whatever_their_key_order() {
        let one: Value = serde_json::from_str(r#"[{"a": 1, "b": 2}]"#).unwrap();
        let other: Value = serde_json::from_str(r#"[{"b": 2, "a": 1}]"#).unwrap();
        assert_eq!(
            request_hash(OperationKind::Create, &one),
            request_hash(OperationKind::Create, &other)
        );
        assert_ne!(
            request_hash(OperationKind::Create, &one),
            request_hash(OperationKind::Replace, &one)
        );
    }
}
