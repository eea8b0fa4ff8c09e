//! Gauges of the whole timer table, sampled by every worker: the due backlog (timers due and
//! not fired yet), timers by state, and batch operations waiting to be applied. Each worker
//! reports the same figures; dashboards take the maximum across workers.

use std::time::Duration;

use metrics::gauge;
use tokio::sync::watch;

use crate::backoff::Backoff;

/// How often the gauges are sampled. Counting is a scan of the timer indexes, so it runs
/// rarely enough to stay cheap on large tables and often enough for alerting.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(15);

pub const DUE_TIMERS: &str = "clockworks_due_timers";
pub const TIMERS: &str = "clockworks_timers";
pub const OPERATIONS_PENDING: &str = "clockworks_operations_pending";

const STATES: [&str; 4] = ["scheduled", "paused", "completed", "failed"];

/// First and longest delay before sampling again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// Samples the gauges until `stop` turns true.
pub async fn run(database_url: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    let mut client = None;
    loop {
        if client.is_none() {
            client = clockworks::db::connect(&database_url).await.ok();
        }
        let pause = match &client {
            Some(connected) => match sample(connected).await {
                Ok(()) => {
                    backoff.reset();
                    SAMPLE_INTERVAL
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "sampling the timer gauges failed");
                    client = None;
                    backoff.next_delay()
                }
            },
            None => backoff.next_delay(),
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sample(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let counts = clockworks::store::gauges::sample(client).await?;
    gauge!(DUE_TIMERS).set(counts.due as f64);
    gauge!(OPERATIONS_PENDING).set(counts.operations_pending as f64);
    for state in STATES {
        let count = counts.by_state.get(state).copied().unwrap_or(0);
        gauge!(TIMERS, "state" => state).set(count as f64);
    }
    Ok(())
}
