//! The worker's upkeep of its tables: vacuuming what the fire path churns once enough dead
//! rows have gathered, and retention spans set by configuration.

use std::time::Duration;

use anyhow::{Result, bail};
use clockworks_tests::Stack;
use clockworks_tests::seed::{self, SeedTimer};

/// Generous bound for a worker to fire a few hundred timers and vacuum after them, on a busy
/// machine where PostgreSQL's statistics may trail by ten seconds.
const UPKEEP_LIMIT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

async fn timers_vacuum_count(client: &tokio_postgres::Client) -> Result<i64> {
    let row = client
        .query_one(
            "select vacuum_count from pg_stat_user_tables where relname = 'timers'",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

async fn completed(client: &tokio_postgres::Client) -> Result<i64> {
    let row = client
        .query_one("select count(*) from timers where state = 'completed'", &[])
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn a_worker_vacuums_the_timers_table_once_firing_left_the_configured_dead_rows() -> Result<()>
{
    let mut stack = Stack::new().await?;
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, -1000).await?;
    let timers: Vec<SeedTimer> = (0..300)
        .map(|n| SeedTimer::at("acme", &format!("t{n}"), due))
        .collect();
    seed::insert(&client, &timers).await?;
    let vacuums_before = timers_vacuum_count(&client).await?;

    let worker = stack
        .start_worker(&[("CLOCKWORKS_VACUUM_DEAD_ROWS", "100")])
        .await?;
    let metrics_url = format!("{}/metrics", worker.admin_url);

    let deadline = tokio::time::Instant::now() + UPKEEP_LIMIT;
    while completed(&client).await? < 300 || timers_vacuum_count(&client).await? == vacuums_before {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "after {UPKEEP_LIMIT:?}: {} of 300 timers completed, timers vacuumed {} times",
                completed(&client).await?,
                timers_vacuum_count(&client).await? - vacuums_before
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }

    let metrics = stack.http.get(&metrics_url).send().await?.text().await?;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("clockworks_vacuums_total")
                && line.contains(r#"table="timers""#)
                && line.contains(r#"outcome="done""#)),
        "no vacuum of timers in the worker's metrics:\n{metrics}"
    );
    stack.shutdown().await
}

#[tokio::test]
async fn a_worker_told_a_shorter_retention_deletes_completed_timers_by_it() -> Result<()> {
    let mut stack = Stack::new().await?;
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, 3_600_000).await?;
    seed::insert(
        &client,
        &[
            SeedTimer::at("acme", "completed-ten-minutes-ago", due),
            SeedTimer::at("acme", "completed-a-minute-ago", due),
        ],
    )
    .await?;
    client
        .execute(
            "update timers
             set state = 'completed',
                 next_fire_at = null,
                 updated_at = now() - case id when 'completed-ten-minutes-ago'
                                              then interval '10 minutes'
                                              else interval '1 minute'
                                      end",
            &[],
        )
        .await?;

    stack
        .start_worker(&[("CLOCKWORKS_COMPLETED_TIMER_RETENTION", "5m")])
        .await?;

    let deadline = tokio::time::Instant::now() + UPKEEP_LIMIT;
    let ids = || async {
        let rows = client
            .query("select id from timers order by id", &[])
            .await?;
        Ok::<Vec<String>, anyhow::Error>(rows.iter().map(|row| row.get(0)).collect())
    };
    while ids().await?.len() > 1 {
        if tokio::time::Instant::now() > deadline {
            bail!("retention did not run within {UPKEEP_LIMIT:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert_eq!(ids().await?, ["completed-a-minute-ago"]);
    stack.shutdown().await
}
