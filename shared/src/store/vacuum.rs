//! Vacuuming the clockworks tables: how many dead row versions each holds, whether this
//! session may vacuum them, and the `VACUUM` itself.
//!
//! Every fire rewrites its timer's row. Until VACUUM removes the old versions, their entries
//! stay at the head of the due index, where the claim query and the due-instant probe walk
//! past every one of them on each batch: a few hundred thousand dead entries cost each query
//! a millisecond or more and make fires tens of milliseconds late. Only one session at a time
//! vacuums ([`try_lock`]).

use tokio_postgres::GenericClient;

/// A table that clockworks rewrites or prunes, which are the ones worth vacuuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Timers,
    Fires,
    Operations,
    OperationItems,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Timers,
        Table::Fires,
        Table::Operations,
        Table::OperationItems,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Timers => "timers",
            Table::Fires => "fires",
            Table::Operations => "operations",
            Table::OperationItems => "operation_items",
        }
    }

    fn named(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|table| table.name() == name)
    }

    /// The statement that vacuums this table. `timers` always has its indexes cleaned: left
    /// to decide, PostgreSQL skips index cleanup when few of a large table's pages hold dead
    /// rows, which would leave exactly the due index's dead entries in place.
    fn vacuum_statement(self) -> &'static str {
        match self {
            Table::Timers => "vacuum (index_cleanup on) timers",
            Table::Fires => "vacuum fires",
            Table::Operations => "vacuum operations",
            Table::OperationItems => "vacuum operation_items",
        }
    }
}

fn table_names() -> Vec<&'static str> {
    Table::ALL.iter().map(|table| table.name()).collect()
}

/// Key of the advisory lock held while vacuuming.
const VACUUM_LOCK_KEY: i64 = 0x636c_6f63_6b76_6163;

/// Live rows per dead row that a table may gather before it is worth vacuuming, whatever the
/// configured count: a vacuum reads every index of the table whole, so a table of millions of
/// rows is vacuumed after a hundredth of them died rather than every few seconds.
pub const LIVE_ROWS_PER_DEAD_ROW: i64 = 100;

/// The dead rows a table of `live_rows` gathers before it is vacuumed, given the configured
/// fewest `dead_rows`: the larger of that and a hundredth of the live rows.
pub fn vacuum_threshold(dead_rows: i64, live_rows: i64) -> i64 {
    dead_rows.max(live_rows / LIVE_ROWS_PER_DEAD_ROW)
}

/// One table's row counts, as PostgreSQL's statistics count them. They lag the truth by up
/// to a second or so, which is all a threshold needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub table: Table,
    pub live: i64,
    pub dead: i64,
}

/// Live and dead row versions per table.
pub async fn row_counts(
    client: &impl GenericClient,
) -> Result<Vec<RowCounts>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select relname::text, n_live_tup, n_dead_tup
             from pg_stat_user_tables
             where schemaname = current_schema()
               and relname = any($1)",
            &[&table_names()],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(RowCounts {
                table: Table::named(row.get(0))?,
                live: row.get(1),
                dead: row.get(2),
            })
        })
        .collect())
}

/// Whether this session's role may vacuum every clockworks table: it must own them or be
/// a member of the role that does (a superuser is a member of every role).
pub async fn may_vacuum(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "select coalesce(bool_and(pg_has_role(current_user, relowner, 'usage')), false)
             from pg_class
             where oid = any(
                 select to_regclass(quote_ident(current_schema()) || '.' || quote_ident(name))
                 from unnest($1::text[]) as name
             )",
            &[&table_names()],
        )
        .await?;
    Ok(row.get(0))
}

/// Bounds how long a `VACUUM` of this session waits for its table lock, which autovacuum or
/// a schema change may hold, so that a vacuum is skipped rather than queued behind them.
pub async fn limit_lock_wait(
    client: &impl GenericClient,
    millis: u64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "select set_config('lock_timeout', $1, false)",
            &[&millis.to_string()],
        )
        .await?;
    Ok(())
}

/// Takes the vacuuming lock for this session if no other session holds it.
pub async fn try_lock(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("select pg_try_advisory_lock($1)", &[&VACUUM_LOCK_KEY])
        .await?;
    Ok(row.get(0))
}

/// Releases the vacuuming lock taken by [`try_lock`].
pub async fn unlock(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client
        .execute("select pg_advisory_unlock($1)", &[&VACUUM_LOCK_KEY])
        .await?;
    Ok(())
}

/// Vacuums one table.
pub async fn vacuum(
    client: &tokio_postgres::Client,
    table: Table,
) -> Result<(), tokio_postgres::Error> {
    // VACUUM cannot run inside a transaction block, so it goes as a simple query.
    client.batch_execute(table.vacuum_statement()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_configured_count_for_small_tables() {
        assert_eq!(vacuum_threshold(1_000, 0), 1_000);
        assert_eq!(vacuum_threshold(1_000, 100_000), 1_000);
    }

    #[test]
    fn the_threshold_grows_with_a_large_table() {
        assert_eq!(vacuum_threshold(1_000, 150_000), 1_500);
        assert_eq!(vacuum_threshold(1_000, 10_000_000), 100_000);
    }
}
