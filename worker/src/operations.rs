//! The operations loop: applies the batch operations the api accepted, and runs the
//! retention step. It keeps one database connection of its own, which also listens on
//! `clockworks_operations` (notified when an operation is accepted); it looks again every
//! [`RECHECK_INTERVAL`] in case a notification was missed.
//!
//! An operation is started (marked `running`, committed, so clients see it), then applied in
//! one transaction that holds its row lock: every item's effect, every item's result and the
//! `succeeded` status commit together. A worker that dies while applying leaves nothing
//! behind; its operation is `running` and unlocked, and the next worker to look starts it
//! again. Operations of one namespace are applied in the order they were accepted, one at a
//! time, except that creates of different timer ids, whose results cannot depend on their
//! order, may be applied by several workers at once (see [`operations::start_next`]). One
//! that has been started [`MAX_OPERATION_ATTEMPTS`] times without finishing is failed rather
//! than started again.
//!
//! Retention, about once every [`RETENTION_INTERVAL`] and by one worker at a time (an
//! advisory lock): operations are deleted some time after they finished, fire records after
//! they were made, completed timers after they completed, as [`Retention`] says (7 days, 7
//! days and 24 hours by default).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clockworks::config::redact_url;
use clockworks::schedule::Schedule;
use clockworks::store::firing;
use clockworks::store::operations::{
    self, ItemResult, OperationError, OperationRequest, Outcome, Resumed, Started, TimerItem,
    TimerRow,
};
use clockworks::store::retention::{self, Retention};
use futures::StreamExt;
use jiff::Timestamp;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use crate::backoff::Backoff;

const OPERATIONS_APPLIED: &str = "clockworks_operations_applied_total";
const OPERATION_APPLY_DURATION: &str = "clockworks_operation_apply_seconds";
const RETENTION_DELETED: &str = "clockworks_retention_deleted_total";

/// The channel the schema's trigger notifies when an operation is accepted.
const OPERATIONS_LISTEN: &str = "listen clockworks_operations";
/// Longest wait between two looks for operations to apply, in case a notification was lost.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Longest time the applying session may run one statement or sit in a transaction: a
/// frozen worker's session is then ended by PostgreSQL, which releases its operation.
pub const OPERATION_HOLD: Duration = Duration::from_secs(300);
/// Starts after which an unfinished operation is failed instead of started again.
pub const MAX_OPERATION_ATTEMPTS: i32 = 5;
/// How many times a create inserts again the items whose existing timer vanished (was
/// deleted) before it could be compared.
const MAX_CREATE_ROUNDS: usize = 3;
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How often each worker tries to run the retention step: every minute, so that deleting
/// keeps up with a fleet firing thousands of timers a second.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// Most rows one retention statement deletes; a backlog is deleted in several.
const RETENTION_BATCH_ROWS: i64 = 10_000;
/// Most retention statements per table in one run, so a huge backlog cannot keep the loop
/// from applying operations for long; the rest waits for the next run.
const MAX_RETENTION_ROUNDS: usize = 100;

/// Applies operations and runs retention until `stop` turns true; an operation being
/// applied is finished first.
pub async fn run(database_url: String, retention: Retention, mut stop: watch::Receiver<bool>) {
    describe_metrics();
    let notified = Arc::new(Notify::new());
    let mut session: Option<Session> = None;
    let mut backoff = Backoff::new(RECONNECT_FIRST, RECONNECT_MAX);
    let mut retention_due = Instant::now();

    while !stopping(&stop) {
        let client = match &mut session {
            Some(open) if !open.client.is_closed() => &mut open.client,
            _ => match Session::open(&database_url, &notified).await {
                Ok(open) => {
                    backoff.reset();
                    &mut session.insert(open).client
                }
                Err(err) => {
                    session = None;
                    tracing::warn!(
                        cause = %err,
                        database.url = %redact_url(&database_url),
                        "connecting for operations failed"
                    );
                    wait(&notified, backoff.next_delay(), &mut stop, false).await;
                    continue;
                }
            },
        };

        match apply_next(client).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(cause = %err, "applying an operation failed; reconnecting");
                session = None;
                wait(&notified, backoff.next_delay(), &mut stop, false).await;
                continue;
            }
        }

        if Instant::now() >= retention_due {
            retention_due = Instant::now() + RETENTION_INTERVAL;
            if let Err(err) = prune(client, &retention).await {
                tracing::warn!(cause = %err, "the retention step failed");
            }
        }
        wait(&notified, RECHECK_INTERVAL, &mut stop, true).await;
    }
    tracing::info!("stopped applying operations");
}

fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Waits `delay`, or until the worker is asked to stop, or (when `wake`) until an operation
/// is announced.
async fn wait(notified: &Notify, delay: Duration, stop: &mut watch::Receiver<bool>, wake: bool) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
        () = notified.notified(), if wake => {}
    }
}

/// The loop's connection: it applies operations and listens for new ones.
struct Session {
    client: tokio_postgres::Client,
    receiving: JoinHandle<()>,
}

impl Session {
    async fn open(database_url: &str, notified: &Arc<Notify>) -> Result<Session, OperationError> {
        let mut config: tokio_postgres::Config = database_url.parse()?;
        config.connect_timeout(clockworks::db::CONNECT_TIMEOUT);
        config.application_name("clockworks-worker-operations");
        let (client, mut connection) = config.connect(NoTls).await?;

        // Whoever polls the connection receives its notifications, and polling it is also
        // what carries the client's queries, so this task does both until it closes.
        let announcer = Arc::clone(notified);
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let receiving = tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(_) = message {
                    announcer.notify_one();
                }
            }
            // Wakes the loop so that it notices the closed connection.
            announcer.notify_one();
        });
        let session = Session { client, receiving };

        session.client.batch_execute(OPERATIONS_LISTEN).await?;
        firing::limit_claim_hold(&session.client, OPERATION_HOLD).await?;
        tracing::debug!("listening for operations");
        Ok(session)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.receiving.abort();
    }
}

/// Starts and applies the next operation, if there is one; returns its id.
async fn apply_next(client: &mut tokio_postgres::Client) -> Result<Option<Uuid>, OperationError> {
    let Some(started) = operations::start_next(client).await? else {
        return Ok(None);
    };
    if started.attempts > MAX_OPERATION_ATTEMPTS {
        tracing::warn!(
            operation.id = %started.id,
            operation.attempts = started.attempts,
            "giving up on an operation that never finished"
        );
        let error =
            format!("the operation was started {MAX_OPERATION_ATTEMPTS} times and never finished");
        operations::fail(&*client, started.id, &error).await?;
        record(started, "unknown", "failed", Duration::ZERO);
        return Ok(Some(started.id));
    }

    let began = std::time::Instant::now();
    let transaction = client.transaction().await?;
    let Some(locked) = operations::lock_started(&transaction, started).await? else {
        // Another worker started it again meanwhile and applies it.
        return Ok(Some(started.id));
    };
    let request = match locked.request {
        Ok(request) => request,
        Err(detail) => {
            transaction.rollback().await?;
            tracing::error!(operation.id = %started.id, cause = %detail, "unreadable operation");
            operations::fail(&*client, started.id, "the stored request cannot be read").await?;
            record(started, "unknown", "failed", began.elapsed());
            return Ok(Some(started.id));
        }
    };
    let kind = request.kind().as_str();

    let applied = apply(
        &transaction,
        &locked.namespace,
        locked.submitted_at,
        &request,
    )
    .await;
    let results = match applied {
        Ok(results) => results,
        Err(err) => {
            let _ = transaction.rollback().await;
            return fail_unless_transient(client, started, kind, err).await;
        }
    };
    operations::finish(&transaction, started.id, &results).await?;
    transaction.commit().await?;

    let elapsed = began.elapsed();
    record(started, kind, "succeeded", elapsed);
    tracing::info!(
        operation.id = %started.id,
        operation.kind = kind,
        operation.attempts = started.attempts,
        namespace = %locked.namespace,
        batch.size = results.len(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "operation applied"
    );
    Ok(Some(started.id))
}

/// After a failed attempt: an error that a later attempt may not meet (a lost connection, a
/// timeout, a deadlock) leaves the operation to be started again; any other fails it, with
/// the cause in the log and a plain error for the client.
async fn fail_unless_transient(
    client: &tokio_postgres::Client,
    started: Started,
    kind: &'static str,
    err: OperationError,
) -> Result<Option<Uuid>, OperationError> {
    let transient = match &err {
        OperationError::Database(db) => client.is_closed() || is_transient(db),
        OperationError::Contended => true,
        OperationError::Unreadable { .. } => false,
    };
    if transient {
        return Err(err);
    }
    tracing::error!(operation.id = %started.id, cause = %err, "an operation failed");
    operations::fail(client, started.id, "the operation could not be applied").await?;
    record(started, kind, "failed", Duration::ZERO);
    Ok(Some(started.id))
}

/// Whether a database error may not happen again on a later attempt.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    let Some(code) = err.code() else {
        return true;
    };
    let class = &code.code()[..2];
    ["08", "40", "53", "57"].contains(&class) || *code == SqlState::LOCK_NOT_AVAILABLE
}

fn record(started: Started, kind: &'static str, status: &'static str, elapsed: Duration) {
    counter!(OPERATIONS_APPLIED, "kind" => kind, "status" => status).increment(1);
    if status == "succeeded" {
        histogram!(OPERATION_APPLY_DURATION, "kind" => kind).record(elapsed.as_secs_f64());
    }
    tracing::debug!(operation.id = %started.id, operation.status = status, "operation finished");
}

/// Applies a request in the operation's transaction and returns every item's result, in
/// item order.
async fn apply(
    transaction: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    submitted_at: Timestamp,
    request: &OperationRequest,
) -> Result<Vec<ItemResult>, OperationError> {
    match request {
        OperationRequest::Create { items } => {
            create(transaction, namespace, submitted_at, items).await
        }
        OperationRequest::Replace { items } => {
            replace(transaction, namespace, submitted_at, items).await
        }
        OperationRequest::DeleteIds { ids } => {
            let deleted: HashSet<String> = operations::delete_ids(transaction, namespace, ids)
                .await?
                .into_iter()
                .collect();
            Ok(ids
                .iter()
                .enumerate()
                .map(|(index, id)| {
                    let outcome = if deleted.contains(id) {
                        Outcome::Deleted
                    } else {
                        Outcome::NotFound
                    };
                    ItemResult::new(index, id, outcome)
                })
                .collect())
        }
        OperationRequest::DeleteGroup { group } => {
            let deleted = operations::delete_group(transaction, namespace, group).await?;
            Ok(each(deleted, Outcome::Deleted))
        }
        OperationRequest::PauseGroup { group } => {
            let paused = operations::pause_group(transaction, namespace, group).await?;
            Ok(each(paused, Outcome::Paused))
        }
        OperationRequest::ResumeGroup { group } => resume(transaction, namespace, group).await,
    }
}

/// One result per timer a group action changed, in id order.
fn each(mut ids: Vec<String>, outcome: Outcome) -> Vec<ItemResult> {
    ids.sort();
    ids.iter()
        .enumerate()
        .map(|(index, id)| ItemResult::new(index, id, outcome))
        .collect()
}

/// A timer row for each item whose schedule reads back, first fire computed from the
/// instant the operation was accepted; a failed result for each other one.
fn timer_rows(
    items: &[TimerItem],
    defined_at: Timestamp,
) -> (Vec<TimerRow<'_>>, HashMap<usize, ItemResult>) {
    let mut rows = Vec::with_capacity(items.len());
    let mut failed = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        match Schedule::from_stored(&item.schedule) {
            Ok(schedule) => rows.push(TimerRow {
                item,
                uid: Uuid::now_v7(),
                next_fire_at: schedule.first_fire(defined_at),
                max_fires: max_fires(&schedule),
            }),
            Err(detail) => {
                let result = ItemResult::new(index, &item.id, Outcome::Failed)
                    .with_error(format!("the schedule cannot be read: {detail}"));
                failed.insert(index, result);
            }
        }
    }
    (rows, failed)
}

fn max_fires(schedule: &Schedule) -> Option<i64> {
    match schedule {
        Schedule::Every(every) => every.recurrence.max_fires,
        Schedule::Cron(cron) => cron.recurrence.max_fires,
        Schedule::At { .. } | Schedule::After { .. } => None,
    }
}

/// The results by item index, in item order; every index has one.
fn in_item_order(items: &[TimerItem], mut results: HashMap<usize, ItemResult>) -> Vec<ItemResult> {
    (0..items.len())
        .map(|index| {
            results.remove(&index).unwrap_or_else(|| {
                ItemResult::new(index, &items[index].id, Outcome::Failed)
                    .with_error("the item was not applied")
            })
        })
        .collect()
}

/// Creates the timers whose ids are free; the others are `existing` (the same definition)
/// or `conflict`. Each round is one insert of every remaining item and one read of the
/// timers that blocked it.
async fn create(
    transaction: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    submitted_at: Timestamp,
    items: &[TimerItem],
) -> Result<Vec<ItemResult>, OperationError> {
    let index_of: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(index, item)| (item.id.as_str(), index))
        .collect();
    let (mut rows, mut results) = timer_rows(items, submitted_at);
    let mut outcome = |id: &str, outcome: Outcome, error: Option<&str>| {
        let index = index_of[id];
        let result = ItemResult::new(index, id, outcome);
        let result = match error {
            Some(error) => result.with_error(error),
            None => result,
        };
        results.insert(index, result);
    };

    for _ in 0..MAX_CREATE_ROUNDS {
        if rows.is_empty() {
            break;
        }
        let inserted: HashSet<String> =
            operations::insert_timers(transaction, namespace, submitted_at, &rows)
                .await?
                .into_iter()
                .collect();
        rows.retain(|row| !inserted.contains(&row.item.id));
        for id in &inserted {
            outcome(id, Outcome::Created, None);
        }
        if rows.is_empty() {
            break;
        }

        let existing: HashMap<String, bool> =
            operations::compare_definitions(transaction, namespace, &rows)
                .await?
                .into_iter()
                .collect();
        for (id, same) in &existing {
            if *same {
                outcome(id, Outcome::Existing, None);
            } else {
                outcome(
                    id,
                    Outcome::Conflict,
                    Some("a timer with this id exists with a different definition"),
                );
            }
        }
        // A timer that blocked the insert and is gone now was deleted meanwhile: try again.
        rows.retain(|row| !existing.contains_key(&row.item.id));
    }
    for row in &rows {
        outcome(
            &row.item.id,
            Outcome::Failed,
            Some("a timer with this id was created and deleted while the batch was applied"),
        );
    }

    Ok(in_item_order(items, results))
}

/// Replaces the timers that exist at the version the item names (if it names one); the
/// others are `conflict` (another version) or `not_found`.
async fn replace(
    transaction: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    submitted_at: Timestamp,
    items: &[TimerItem],
) -> Result<Vec<ItemResult>, OperationError> {
    let (rows, mut results) = timer_rows(items, submitted_at);

    let replaced: HashSet<String> = operations::replace_timers(transaction, namespace, &rows)
        .await?
        .into_iter()
        .collect();
    let missed: Vec<&str> = rows
        .iter()
        .map(|row| row.item.id.as_str())
        .filter(|id| !replaced.contains(*id))
        .collect();
    let versions: HashMap<String, i64> = if missed.is_empty() {
        HashMap::new()
    } else {
        operations::versions(transaction, namespace, &missed)
            .await?
            .into_iter()
            .collect()
    };

    for (index, item) in items.iter().enumerate() {
        if results.contains_key(&index) {
            continue;
        }
        let result = if replaced.contains(&item.id) {
            ItemResult::new(index, &item.id, Outcome::Replaced)
        } else if let Some(version) = versions.get(&item.id) {
            let wanted = item
                .version
                .map_or_else(String::new, |v| format!(", not {v}"));
            ItemResult::new(index, &item.id, Outcome::Conflict)
                .with_error(format!("the timer is at version {version}{wanted}"))
        } else {
            ItemResult::new(index, &item.id, Outcome::NotFound)
        };
        results.insert(index, result);
    }

    Ok(in_item_order(items, results))
}

/// Resumes every paused timer of a group from the slot it was waiting for, by its
/// missed-fire policy, at the database's now.
async fn resume(
    transaction: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    group: &str,
) -> Result<Vec<ItemResult>, OperationError> {
    let (paused, now) = operations::lock_paused_group(transaction, namespace, group).await?;

    let mut resumed = Vec::with_capacity(paused.len());
    let mut results = Vec::with_capacity(paused.len());
    for (index, timer) in paused.iter().enumerate() {
        match Schedule::from_stored(&timer.schedule) {
            Ok(schedule) => {
                resumed.push(Resumed {
                    id: timer.id.clone(),
                    next_fire_at: schedule.resume_fire(timer.slot, now),
                });
                results.push(ItemResult::new(index, &timer.id, Outcome::Resumed));
            }
            Err(detail) => results.push(
                ItemResult::new(index, &timer.id, Outcome::Failed)
                    .with_error(format!("the stored schedule cannot be read: {detail}")),
            ),
        }
    }
    if !resumed.is_empty() {
        operations::resume_timers(transaction, namespace, &resumed).await?;
    }
    Ok(results)
}

/// The retention step, if no other worker is running it.
async fn prune(
    client: &tokio_postgres::Client,
    retention: &Retention,
) -> Result<(), tokio_postgres::Error> {
    if !retention::try_lock(client).await? {
        return Ok(());
    }
    let outcome = prune_locked(client, retention).await;
    retention::unlock(client).await?;
    outcome
}

async fn prune_locked(
    client: &tokio_postgres::Client,
    retention: &Retention,
) -> Result<(), tokio_postgres::Error> {
    let mut operations_deleted = 0;
    let mut fires_deleted = 0;
    let mut timers_deleted = 0;
    for _ in 0..MAX_RETENTION_ROUNDS {
        let deleted =
            retention::prune_operations(client, retention.operations, RETENTION_BATCH_ROWS).await?;
        operations_deleted += deleted;
        if deleted < RETENTION_BATCH_ROWS as u64 {
            break;
        }
    }
    for _ in 0..MAX_RETENTION_ROUNDS {
        let deleted = retention::prune_fires(client, retention.fires, RETENTION_BATCH_ROWS).await?;
        fires_deleted += deleted;
        if deleted < RETENTION_BATCH_ROWS as u64 {
            break;
        }
    }
    for _ in 0..MAX_RETENTION_ROUNDS {
        let deleted = retention::prune_completed_timers(
            client,
            retention.completed_timers,
            RETENTION_BATCH_ROWS,
        )
        .await?;
        timers_deleted += deleted;
        if deleted < RETENTION_BATCH_ROWS as u64 {
            break;
        }
    }

    counter!(RETENTION_DELETED, "table" => "operations").increment(operations_deleted);
    counter!(RETENTION_DELETED, "table" => "fires").increment(fires_deleted);
    counter!(RETENTION_DELETED, "table" => "timers").increment(timers_deleted);
    if operations_deleted + fires_deleted + timers_deleted > 0 {
        tracing::info!(
            retention.operations = operations_deleted,
            retention.fires = fires_deleted,
            retention.timers = timers_deleted,
            "deleted what outlived its retention"
        );
    }
    Ok(())
}

fn describe_metrics() {
    describe_counter!(
        OPERATIONS_APPLIED,
        "Batch operations finished, by kind and status (succeeded or failed)."
    );
    describe_histogram!(
        OPERATION_APPLY_DURATION,
        Unit::Seconds,
        "Time to apply one batch operation, from its start to its commit."
    );
    describe_counter!(
        RETENTION_DELETED,
        "Rows deleted by retention, by table: finished operations, fire records and \
         completed timers."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, schedule: serde_json::Value) -> TimerItem {
        TimerItem {
            id: id.to_owned(),
            version: None,
            group: None,
            schedule,
            routing_key: "k".to_owned(),
            payload: json!(null),
            headers: Default::default(),
            expire_after_ms: None,
        }
    }

    #[test]
    fn first_fires_count_from_the_instant_the_operation_was_accepted() {
        let accepted: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let items = [
            item("a", json!({"after": "30s"})),
            item("b", json!({"every": "1m", "max_fires": 3})),
            item("c", json!({"at": "not an instant"})),
        ];

        let (rows, failed) = timer_rows(&items, accepted);

        assert_eq!(
            rows[0].next_fire_at,
            Some("2027-01-01T00:00:30Z".parse().unwrap())
        );
        assert_eq!(rows[1].max_fires, Some(3));
        assert_eq!(failed[&2].outcome, Outcome::Failed);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn group_results_are_numbered_in_id_order() {
        let results = each(vec!["b".to_owned(), "a".to_owned()], Outcome::Paused);
        assert_eq!(results[0].timer_id.as_deref(), Some("a"));
        assert_eq!(results[1].index, 1);
    }
}
