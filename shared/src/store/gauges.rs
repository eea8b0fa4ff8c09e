//! Counts over the whole `timers` and `operations` tables, for the workers' gauges.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

/// What the gauges show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Timers due by the database clock and not fired yet.
    pub due: i64,
    /// Timers per state.
    pub by_state: BTreeMap<String, i64>,
    /// Batch operations accepted and not finished.
    pub operations_pending: i64,
}

pub async fn sample(client: &impl GenericClient) -> Result<Counts, tokio_postgres::Error> {
    let due = client
        .query_one(
            "select count(*)
             from timers
             where state = 'scheduled'
               and next_fire_at <= now()",
            &[],
        )
        .await?
        .get(0);
    let by_state = client
        .query(
            "select state, count(*)
             from timers
             group by state",
            &[],
        )
        .await?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let operations_pending = client
        .query_one(
            "select count(*)
             from operations
             where status in ('pending', 'running')",
            &[],
        )
        .await?
        .get(0);
    Ok(Counts {
        due,
        by_state,
        operations_pending,
    })
}
