//! Retention: what is deleted once it is old enough, so that the tables stay small. Finished
//! operations (with their item results), fire history, and completed timers. Each delete
//! removes at most a given number of rows per statement, oldest first, so that a large
//! backlog is worked off in short transactions that never hold many locks for long.
//!
//! Only one process should prune at a time: [`try_lock`] takes a session-level advisory
//! lock that others fail to take while it is held.

use std::time::Duration;

use tokio_postgres::GenericClient;

/// How long a finished operation (with its item results) is kept by default: 7 days. An
/// idempotency key can be used again once its operation is gone.
pub const OPERATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a fire record is kept by default: 7 days.
pub const FIRE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a completed timer is kept after it completed, by default: 24 hours. After that a
/// read of it finds nothing.
pub const COMPLETED_TIMER_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long each kind of row is kept; the defaults are the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished operations, with their item results, after they finished.
    pub operations: Duration,
    /// Fire records after the fire.
    pub fires: Duration,
    /// Completed timers after they completed.
    pub completed_timers: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            operations: OPERATION_RETENTION,
            fires: FIRE_RETENTION,
            completed_timers: COMPLETED_TIMER_RETENTION,
        }
    }
}

/// Key of the advisory lock held while pruning.
const RETENTION_LOCK_KEY: i64 = 0x636c_6f63_6b72_6574;

/// Takes the pruning lock for this session if no other session holds it.
pub async fn try_lock(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("select pg_try_advisory_lock($1)", &[&RETENTION_LOCK_KEY])
        .await?;
    Ok(row.get(0))
}

/// Releases the pruning lock taken by [`try_lock`].
pub async fn unlock(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client
        .execute("select pg_advisory_unlock($1)", &[&RETENTION_LOCK_KEY])
        .await?;
    Ok(())
}

/// `age` as a PostgreSQL interval parameter, in whole seconds.
fn seconds(age: Duration) -> f64 {
    age.as_secs() as f64
}

/// Deletes up to `limit` operations that finished more than `age` ago, with their item
/// results, in one statement; returns how many operations it deleted. No foreign key ties
/// the items to their operation (writing them is cheaper without one), so this is the one
/// place that deletes both.
pub async fn prune_operations(
    client: &impl GenericClient,
    age: Duration,
    limit: i64,
) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "with pruned as (
                 delete from operations
                 where id in (
                     select id
                     from operations
                     where status in ('succeeded', 'failed')
                       and finished_at < now() - make_interval(secs => $1)
                     order by finished_at
                     limit $2
                 )
                 returning id
             ),
             pruned_items as (
                 delete from operation_items
                 where operation_id in (select id from pruned)
             )
             select count(*)
             from pruned",
            &[&seconds(age), &limit],
        )
        .await?;
    let deleted: i64 = row.try_get(0)?;
    Ok(u64::try_from(deleted).unwrap_or_default())
}

/// Deletes up to `limit` fire records older than `age`; returns how many it deleted.
pub async fn prune_fires(
    client: &impl GenericClient,
    age: Duration,
    limit: i64,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "delete from fires
             where (timer_uid, fire_seq) in (
                 select timer_uid, fire_seq
                 from fires
                 where fired_at < now() - make_interval(secs => $1)
                 order by fired_at
                 limit $2
             )",
            &[&seconds(age), &limit],
        )
        .await
}

/// Deletes up to `limit` timers that completed more than `age` ago; returns how many it
/// deleted.
pub async fn prune_completed_timers(
    client: &impl GenericClient,
    age: Duration,
    limit: i64,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "delete from timers
             where uid in (
                 select uid
                 from timers
                 where state = 'completed'
                   and updated_at < now() - make_interval(secs => $1)
                 order by updated_at
                 limit $2
             )",
            &[&seconds(age), &limit],
        )
        .await
}
