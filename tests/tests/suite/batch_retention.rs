//! Retention, run by a worker when it starts and hourly after: finished operations, fire
//! records and completed timers older than their retention are deleted; younger ones and
//! live timers are kept.

use crate::batch_support;

use std::time::Duration;

use anyhow::{Result, bail};
use batch_support::count;
use clockworks::store::retention::{
    COMPLETED_TIMER_RETENTION, FIRE_RETENTION, OPERATION_RETENTION,
};
use clockworks_tests::Stack;
use clockworks_tests::seed::{self, SeedTimer};
use uuid::Uuid;

/// Generous bound for a worker to start and run its first retention step.
const RETENTION_LIMIT: Duration = Duration::from_secs(60);
/// How much older or younger than a retention the seeded rows are.
const MARGIN: Duration = Duration::from_secs(3600);

/// Seconds of `age`, for an interval parameter.
fn seconds(age: Duration) -> f64 {
    age.as_secs() as f64
}

async fn seed_operation(client: &tokio_postgres::Client, age: Duration) -> Result<Uuid> {
    let id = Uuid::now_v7();
    client
        .execute(
            "insert into operations (id, namespace, kind, status, request, item_count,
                                     submitted_at, started_at, finished_at)
             values ($1, 'acme', 'delete', 'succeeded', '{}', 0,
                     now() - make_interval(secs => $2), now() - make_interval(secs => $2),
                     now() - make_interval(secs => $2))",
            &[&id, &seconds(age)],
        )
        .await?;
    client
        .execute(
            "insert into operation_items (operation_id, item_index, timer_id, outcome)
             values ($1, 0, 'x', 'deleted')",
            &[&id],
        )
        .await?;
    Ok(id)
}

async fn seed_fire(client: &tokio_postgres::Client, age: Duration) -> Result<Uuid> {
    let uid = Uuid::now_v7();
    client
        .execute(
            "insert into fires (timer_uid, fire_seq, namespace, timer_id, scheduled_at, fired_at)
             values ($1, 1, 'acme', 'gone', now() - make_interval(secs => $2),
                     now() - make_interval(secs => $2))",
            &[&uid, &seconds(age)],
        )
        .await?;
    Ok(uid)
}

/// A timer in `state` last updated `age` ago.
async fn seed_timer(
    client: &tokio_postgres::Client,
    id: &str,
    state: &str,
    age: Duration,
) -> Result<()> {
    let due = seed::due_in(client, 3_600_000).await?;
    seed::insert(client, &[SeedTimer::at("acme", id, due)]).await?;
    client
        .execute(
            "update timers
             set state = $2,
                 next_fire_at = case when $2 = 'completed' then null else next_fire_at end,
                 updated_at = now() - make_interval(secs => $3)
             where id = $1",
            &[&id, &state, &seconds(age)],
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_worker_deletes_what_outlived_its_retention_and_keeps_the_rest() -> Result<()> {
    let mut stack = Stack::new().await?;
    let client = stack.db.client().await?;
    let old_operation = seed_operation(&client, OPERATION_RETENTION + MARGIN).await?;
    let young_operation = seed_operation(&client, OPERATION_RETENTION - MARGIN).await?;
    let old_fire = seed_fire(&client, FIRE_RETENTION + MARGIN).await?;
    let young_fire = seed_fire(&client, FIRE_RETENTION - MARGIN).await?;
    let completed_long_ago = COMPLETED_TIMER_RETENTION + MARGIN;
    seed_timer(
        &client,
        "completed-long-ago",
        "completed",
        completed_long_ago,
    )
    .await?;
    let completed_lately = COMPLETED_TIMER_RETENTION - MARGIN;
    seed_timer(&client, "completed-lately", "completed", completed_lately).await?;
    seed_timer(&client, "paused-long-ago", "paused", completed_long_ago).await?;

    stack.start_worker(&[]).await?;

    let deadline = tokio::time::Instant::now() + RETENTION_LIMIT;
    let old_left = || async {
        let operations = "select count(*) from operations where id = $1";
        let fires = "select count(*) from fires where timer_uid = $1";
        let timers = "select count(*) from timers where id = 'completed-long-ago'";
        Ok::<i64, anyhow::Error>(
            count(&stack, operations, &[&old_operation]).await?
                + count(&stack, fires, &[&old_fire]).await?
                + count(&stack, timers, &[]).await?,
        )
    };
    while old_left().await? > 0 {
        if tokio::time::Instant::now() > deadline {
            bail!("retention did not run within {RETENTION_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let items = "select count(*) from operation_items where operation_id = $1";
    assert_eq!(count(&stack, items, &[&old_operation]).await?, 0);
    assert_eq!(count(&stack, items, &[&young_operation]).await?, 1);
    let fires = "select count(*) from fires where timer_uid = $1";
    assert_eq!(count(&stack, fires, &[&young_fire]).await?, 1);
    let mut kept: Vec<String> = client
        .query("select id from timers order by id", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    kept.sort();
    assert_eq!(kept, ["completed-lately", "paused-long-ago"]);
    stack.shutdown().await
}
