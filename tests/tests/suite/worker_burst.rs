//! Many timers due at the same instant, fired by several workers, and by workers that die or
//! are stopped in the middle: every timer fires, none is lost, and a duplicate (allowed only
//! after a crash) carries the same message id as the original.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use clockworks::message;
use clockworks_tests::seed::{self, SeedTimer};
use clockworks_tests::{Consumer, Fired, Stack};

const BURST: usize = 5_000;
/// Generous: a burst takes seconds on a busy two-core machine.
const BURST_LIMIT: Duration = Duration::from_secs(120);
/// After the last expected message, how long to keep listening for extra ones.
const QUIET_WINDOW: Duration = Duration::from_secs(2);
/// A small batch makes a burst many transactions long, so that a worker can be stopped in
/// the middle of it.
const SMALL_BATCH: &str = "20";

/// Inserts `count` timers due `delay_ms` from now; returns each message id with its timer id.
async fn seed_burst(
    stack: &Stack,
    count: usize,
    delay_ms: i64,
) -> Result<BTreeMap<String, String>> {
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, delay_ms).await?;
    let timers: Vec<SeedTimer> = (0..count)
        .map(|n| SeedTimer::at("acme", &format!("burst-{n:05}"), due))
        .collect();
    seed::insert(&client, &timers).await?;
    Ok(timers
        .iter()
        .map(|timer| (message::message_id(timer.uid, 1), timer.id.clone()))
        .collect())
}

/// Receives until every expected message id arrived (or the limit passed), then for a quiet
/// window more; returns every message id received, duplicates included, after those
/// `received` already.
async fn receive_all(
    consumer: &mut Consumer,
    expected: &BTreeMap<String, String>,
    mut received: Vec<String>,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + BURST_LIMIT;
    let mut distinct: BTreeSet<String> = received.iter().cloned().collect();
    while distinct.len() < expected.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(fired) = consumer.next(left).await else {
            break;
        };
        assert!(
            fired.received_at >= fired.scheduled_at(),
            "{} fired early",
            fired.timer_id()
        );
        let id = fired.message_id.clone().unwrap_or_default();
        distinct.insert(id.clone());
        received.push(id);
    }
    for fired in consumer.collect_for(QUIET_WINDOW).await {
        received.push(fired.message_id.unwrap_or_default());
    }
    received
}

/// The message ids of deliveries.
fn message_ids(fired: Vec<Fired>) -> Vec<String> {
    fired
        .into_iter()
        .map(|fired| fired.message_id.unwrap_or_default())
        .collect()
}

/// Asserts that every expected message arrived and nothing else did.
fn assert_every_timer_fired(received: &[String], expected: &BTreeMap<String, String>) {
    let distinct: BTreeSet<&String> = received.iter().collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|(id, _)| !distinct.contains(id))
        .map(|(_, timer)| timer)
        .collect();
    assert!(
        missing.is_empty(),
        "{} timers never fired: {missing:?}",
        missing.len()
    );
    let unexpected: Vec<&&String> = distinct
        .iter()
        .filter(|id| !expected.contains_key(**id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected message ids: {unexpected:?}"
    );
}

/// `(completed timers, recorded fires)` in the database.
async fn recorded(stack: &Stack) -> Result<(i64, i64)> {
    let client = stack.db.client().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = client
            .query_one(
                "select (select count(*) from timers where state = 'completed'),
                        (select count(*) from fires)",
                &[],
            )
            .await?;
        let counts: (i64, i64) = (row.get(0), row.get(1));
        if counts.0 == BURST as i64 || tokio::time::Instant::now() > deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn still_scheduled(stack: &Stack) -> Result<i64> {
    let client = stack.db.client().await?;
    let row = client
        .query_one("select count(*) from timers where state = 'scheduled'", &[])
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn two_workers_fire_a_burst_of_5000_timers_exactly_once_each() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;

    let expected = seed_burst(&stack, BURST, 2000).await?;
    let started = tokio::time::Instant::now();
    let received = receive_all(&mut consumer, &expected, Vec::new()).await;
    eprintln!(
        "two workers: {} messages within {:?} of seeding",
        received.len(),
        started.elapsed()
    );

    assert_every_timer_fired(&received, &expected);
    assert_eq!(received.len(), BURST, "some timers fired more than once");
    assert_eq!(recorded(&stack).await?, (BURST as i64, BURST as i64));

    stack.shutdown().await
}

#[tokio::test]
async fn a_worker_killed_in_the_middle_of_a_burst_loses_no_timer() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack
        .start_worker(&[("CLOCKWORKS_CLAIM_BATCH_SIZE", SMALL_BATCH)])
        .await?;
    let mut consumer = stack.consumer("acme.#").await?;

    let expected = seed_burst(&stack, BURST, 1000).await?;
    // Some batches committed, some not claimed yet, probably one between confirm and commit.
    let before_kill = consumer.collect(BURST / 5, Duration::from_secs(60)).await;
    assert_eq!(before_kill.len(), BURST / 5, "the burst did not start");
    stack.workers[0].process.kill_and_wait().await;
    let left = still_scheduled(&stack).await?;
    assert!(
        left > 0,
        "the burst was over before the kill; nothing was tested"
    );
    eprintln!("killed the worker with {left} timers still scheduled");

    stack.start_worker(&[]).await?;
    let received = receive_all(&mut consumer, &expected, message_ids(before_kill)).await;
    eprintln!(
        "after the kill: {} messages, {} duplicates",
        received.len(),
        received.len() - BURST
    );

    assert_every_timer_fired(&received, &expected);
    assert_eq!(recorded(&stack).await?, (BURST as i64, BURST as i64));

    stack.shutdown().await
}

#[tokio::test]
async fn a_worker_stopped_in_the_middle_of_a_burst_finishes_its_batch_and_fires_nothing_twice()
-> Result<()> {
    let mut stack = Stack::new().await?;
    stack
        .start_worker(&[("CLOCKWORKS_CLAIM_BATCH_SIZE", SMALL_BATCH)])
        .await?;
    let mut consumer = stack.consumer("acme.#").await?;

    let expected = seed_burst(&stack, BURST, 1000).await?;
    let before_stop = consumer.collect(BURST / 5, Duration::from_secs(60)).await;
    assert_eq!(before_stop.len(), BURST / 5, "the burst did not start");
    stack.workers[0].process.signal("TERM").await?;
    let status = stack.workers[0]
        .process
        .wait_exit(Duration::from_secs(30))
        .await?;
    assert!(status.success(), "the worker exited with {status}");
    let left = still_scheduled(&stack).await?;
    assert!(
        left > 0,
        "the burst was over before the stop; nothing was tested"
    );

    stack.start_worker(&[]).await?;
    let received = receive_all(&mut consumer, &expected, message_ids(before_stop)).await;

    assert_every_timer_fired(&received, &expected);
    assert_eq!(
        received.len(),
        BURST,
        "a stopped worker left a fire to be repeated"
    );
    assert_eq!(recorded(&stack).await?, (BURST as i64, BURST as i64));

    stack.shutdown().await
}
