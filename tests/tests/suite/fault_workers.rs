//! Workers that die, freeze or were away: killed between claiming and publishing, frozen
//! (SIGSTOP) while holding a claim, and started after an outage. Claimed timers are free
//! again as soon as the claiming session ends, and at the latest after the claim hold
//! (`--claim-hold-secs`, 10 s by default), when PostgreSQL ends a session idle in its
//! transaction; a fire published twice carries the same message id both times.
//!
//! A worker is made to hold a claim by stalling its path to the broker: it claims, publishes
//! into the stall and waits for confirms that cannot come.

use crate::fault_support;

use std::time::Duration;

use anyhow::Result;
use clockworks_tests::proxy::url_through;
use clockworks_tests::stack::amqp_url;
use clockworks_tests::{Proxy, Stack};
use fault_support::{
    Deliveries, RECEIVE_LIMIT, await_claim, recorded, seed_due, settled, upstream,
};
use jiff::{SignedDuration, Timestamp};

const TIMERS: usize = 100;
/// The default claim hold, which these tests rely on.
const CLAIM_HOLD: SignedDuration = SignedDuration::from_secs(10);
/// A confirm timeout just under the claim hold, so that a worker waiting for confirms holds
/// its claim for as long as it can.
const LONG_CONFIRM_TIMEOUT_MS: &str = "9500";
/// Generous allowance on top of the claim hold for a worker to notice and fire.
const FIRE_ALLOWANCE: SignedDuration = SignedDuration::from_secs(30);
/// How long a worker may take to claim timers that just came due.
const CLAIM_WITHIN: Duration = Duration::from_secs(15);
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

/// A stack whose first worker reaches the broker through the returned proxy, which is
/// stalled, and confirms late.
async fn worker_with_a_stalled_broker() -> Result<(Stack, Proxy)> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&amqp_url()).await?).await?;
    let through = url_through(&amqp_url(), &proxy);
    stack
        .start_worker(&[
            ("AMQP_URL", &through),
            ("CLOCKWORKS_CONFIRM_TIMEOUT_MS", LONG_CONFIRM_TIMEOUT_MS),
        ])
        .await?;
    proxy.stall();
    Ok((stack, proxy))
}

/// The earliest and latest `fired_at` of the recorded fires, by the database clock.
async fn fired_between(stack: &Stack) -> Result<(Timestamp, Timestamp)> {
    let client = stack.db.client().await?;
    let row = client
        .query_one("select min(fired_at), max(fired_at) from fires", &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

#[tokio::test]
async fn a_worker_killed_after_claiming_and_before_publishing_loses_no_timer() -> Result<()> {
    let (mut stack, proxy) = worker_with_a_stalled_broker().await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let seeded = seed_due(&stack, TIMERS, 500).await?;

    let claimed_at = await_claim(&stack, CLAIM_WITHIN).await?;
    stack.workers[0].process.kill_and_wait().await;
    assert_eq!(recorded(&stack).await?, (0, 0));
    stack.start_worker(&[]).await?;

    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    // Whatever the killed worker left in the stalled connection reaches the broker now.
    proxy.restore();
    deliveries
        .0
        .extend(consumer.collect_for(Duration::from_secs(3)).await);
    let repeated = deliveries.assert_promises(&seeded);
    let timers = i64::try_from(TIMERS)?;
    assert_eq!(
        settled(&stack, TIMERS, SETTLE_WITHIN).await?,
        (timers, timers)
    );
    let (_, last) = fired_between(&stack).await?;
    assert!(
        last <= claimed_at + CLAIM_HOLD + FIRE_ALLOWANCE,
        "claimed at {claimed_at}, the last fired at {last}"
    );
    eprintln!(
        "killed holding a claim: all fired {} ms after the claim, {repeated} repeated",
        last.duration_since(claimed_at).as_millis()
    );

    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn a_frozen_worker_holds_its_claim_only_for_the_claim_hold_and_repeats_with_the_same_ids()
-> Result<()> {
    let (mut stack, proxy) = worker_with_a_stalled_broker().await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let seeded = seed_due(&stack, TIMERS, 500).await?;

    let held_since = await_claim(&stack, CLAIM_WITHIN).await?;
    stack.workers[0].process.signal("STOP").await?;
    stack.start_worker(&[]).await?;

    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    let repeated_before_thaw = deliveries.assert_promises(&seeded);
    assert_eq!(repeated_before_thaw, 0);
    let timers = i64::try_from(TIMERS)?;
    assert_eq!(
        settled(&stack, TIMERS, SETTLE_WITHIN).await?,
        (timers, timers)
    );
    let (first, last) = fired_between(&stack).await?;
    assert!(
        first >= held_since + CLAIM_HOLD,
        "fired at {first} while the frozen worker held the claim (since {held_since})"
    );
    assert!(
        last <= held_since + CLAIM_HOLD + FIRE_ALLOWANCE,
        "held since {held_since}, the last fired at {last}"
    );

    // Thawed, the first worker's publications reach the broker: repeats, with the same ids.
    stack.workers[0].process.signal("CONT").await?;
    proxy.restore();
    deliveries
        .0
        .extend(consumer.collect_for(Duration::from_secs(5)).await);
    let repeated = deliveries.assert_promises(&seeded);
    assert_eq!(
        recorded(&stack).await?,
        (timers, timers),
        "a fire was recorded twice"
    );
    eprintln!(
        "frozen holding a claim: fired {} ms after the claim, {repeated} repeated after the thaw",
        first.duration_since(held_since).as_millis()
    );

    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn a_worker_started_after_an_outage_fires_every_overdue_timer_without_api_traffic()
-> Result<()> {
    let mut stack = Stack::new().await?;
    // A first worker declares the exchange for the consumer, then the outage begins.
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    stack.workers[0].process.signal("TERM").await?;
    stack.workers[0]
        .process
        .wait_exit(Duration::from_secs(30))
        .await?;
    let seeded = seed_due(&stack, 1_000, -60_000).await?;

    stack.start_worker(&[]).await?;

    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    let repeated = deliveries.assert_promises(&seeded);
    assert_eq!(repeated, 0);
    assert_eq!(settled(&stack, 1_000, SETTLE_WITHIN).await?, (1_000, 1_000));

    stack.shutdown().await
}
