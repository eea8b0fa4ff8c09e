//! The vacuum loop: keeps the tables the fire path churns free of dead row versions, so that
//! claims stay as fast at the millionth fire as at the first.
//!
//! Autovacuum alone does not keep up with a timer service: it looks at a database about once
//! a minute, may skip a large table's index cleanup, and may be switched off altogether.
//! Every [`CHECK_INTERVAL`] each worker reads how many live and dead rows each clockworks
//! table holds and vacuums one that has gathered its threshold of dead rows since it was last
//! vacuumed: the configured count, or a hundredth of its live rows if that is more (see
//! [`vacuum::vacuum_threshold`]). An advisory lock lets one worker at a time do it. A vacuum
//! that does not get its table lock within [`LOCK_WAIT_MS`] (autovacuum holds it, say) is
//! skipped until the next look.
//!
//! A table whose dead rows cannot be removed, because an old transaction elsewhere still sees
//! them, is vacuumed again only once its threshold more has gathered.

use std::collections::HashMap;
use std::time::Duration;

use clockworks::db::DbError;
use clockworks::store::vacuum::{self, Table};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::Backoff;

const VACUUMS: &str = "clockworks_vacuums_total";
const VACUUM_DURATION: &str = "clockworks_vacuum_duration_seconds";

/// How often each worker reads the tables' dead row counts.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for a table's lock before a vacuum is skipped, in milliseconds.
const LOCK_WAIT_MS: u64 = 1_000;
/// First and longest delay before connecting again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// Vacuums every table that gathers its threshold of dead rows, at least `dead_rows`, until
/// `stop` turns true. With
/// `dead_rows` 0 it returns at once and leaves the tables to autovacuum.
pub async fn run(database_url: String, dead_rows: i64, mut stop: watch::Receiver<bool>) {
    if dead_rows == 0 {
        tracing::info!("vacuuming left to autovacuum");
        return;
    }
    describe_metrics();
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    let mut client = None;
    // Dead rows a table still held after this worker's last vacuum of it.
    let mut left_behind: HashMap<Table, i64> = HashMap::new();

    loop {
        if client.is_none() {
            client = match open(&database_url).await {
                Ok(Some(opened)) => Some(opened),
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(cause = %err, "connecting for vacuums failed");
                    None
                }
            };
        }
        let pause = match &client {
            Some(connected) => {
                match vacuum_what_needs_it(connected, dead_rows, &mut left_behind).await {
                    Ok(()) => {
                        backoff.reset();
                        CHECK_INTERVAL
                    }
                    Err(err) => {
                        tracing::warn!(cause = %err, "vacuuming failed");
                        client = None;
                        backoff.next_delay()
                    }
                }
            }
            None => backoff.next_delay(),
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Opens the vacuuming connection, or `None` when this worker's role may not vacuum the
/// tables, which is then said once.
async fn open(database_url: &str) -> Result<Option<tokio_postgres::Client>, DbError> {
    let client = clockworks::db::connect(database_url).await?;
    if !vacuum::may_vacuum(&client).await? {
        tracing::warn!(
            "the worker's database role does not own the clockworks tables and cannot vacuum \
             them; they are left to autovacuum (set CLOCKWORKS_VACUUM_DEAD_ROWS=0 to silence \
             this)"
        );
        return Ok(None);
    }
    vacuum::limit_lock_wait(&client, LOCK_WAIT_MS).await?;
    Ok(Some(client))
}

/// Vacuums, under the vacuuming lock, each table with its threshold more dead rows than this
/// worker's last vacuum of it left behind.
async fn vacuum_what_needs_it(
    client: &tokio_postgres::Client,
    dead_rows: i64,
    left_behind: &mut HashMap<Table, i64>,
) -> Result<(), tokio_postgres::Error> {
    let due: Vec<Table> = vacuum::row_counts(client)
        .await?
        .into_iter()
        .filter(|counts| {
            let left = left_behind.get(&counts.table).copied().unwrap_or(0);
            counts.dead >= vacuum::vacuum_threshold(dead_rows, counts.live) + left
        })
        .map(|counts| counts.table)
        .collect();
    if due.is_empty() || !vacuum::try_lock(client).await? {
        return Ok(());
    }

    let outcome = vacuum_each(client, &due).await;
    vacuum::unlock(client).await?;
    for counts in vacuum::row_counts(client).await? {
        if due.contains(&counts.table) {
            left_behind.insert(counts.table, counts.dead);
        }
    }
    outcome
}

async fn vacuum_each(
    client: &tokio_postgres::Client,
    tables: &[Table],
) -> Result<(), tokio_postgres::Error> {
    for &table in tables {
        let started = Instant::now();
        match vacuum::vacuum(client, table).await {
            Ok(()) => {
                let took = started.elapsed();
                counter!(VACUUMS, "table" => table.name(), "outcome" => "done").increment(1);
                histogram!(VACUUM_DURATION, "table" => table.name()).record(took.as_secs_f64());
                tracing::debug!(
                    vacuum.table = table.name(),
                    vacuum.millis = took.as_millis(),
                    "vacuumed"
                );
            }
            Err(err) if is_lock_timeout(&err) => {
                counter!(VACUUMS, "table" => table.name(), "outcome" => "skipped").increment(1);
                tracing::debug!(vacuum.table = table.name(), "table busy; vacuum skipped");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn is_lock_timeout(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

fn describe_metrics() {
    describe_counter!(
        VACUUMS,
        "Vacuums the workers ran, by table and outcome (done, or skipped while another \
         session held the table)"
    );
    describe_histogram!(
        VACUUM_DURATION,
        Unit::Seconds,
        "Duration of one vacuum, by table"
    );
}
