//! Outages in the middle of a burst: the worker's connection to RabbitMQ or to PostgreSQL is
//! cut (through a proxy), then restored. Fires are late, never lost; a fire repeated because
//! its commit was cut off carries the same message id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use clockworks::message;
use clockworks_tests::proxy::url_through;
use clockworks_tests::seed::{self, SeedTimer};
use clockworks_tests::stack::amqp_url;
use clockworks_tests::{Consumer, Proxy, Stack};
use reqwest::StatusCode;

const BURST: usize = 2_000;
const RECEIVE_LIMIT: Duration = Duration::from_secs(120);
const OUTAGE: Duration = Duration::from_secs(2);
const SMALL_BATCH: &str = "20";

fn upstream(url: &str) -> std::net::SocketAddr {
    let authority = url.split_once("://").expect("a URL").1;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    let host_port = host_port.split(['/', '?']).next().expect("a host");
    host_port.parse().expect("a numeric host and port")
}

async fn seed_burst(stack: &Stack) -> Result<BTreeMap<String, String>> {
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, 1000).await?;
    let timers: Vec<SeedTimer> = (0..BURST)
        .map(|n| SeedTimer::at("acme", &format!("burst-{n:05}"), due))
        .collect();
    seed::insert(&client, &timers).await?;
    Ok(timers
        .iter()
        .map(|timer| (message::message_id(timer.uid, 1), timer.id.clone()))
        .collect())
}

/// Message ids received until every expected one arrived or the limit passed.
async fn receive_rest(
    consumer: &mut Consumer,
    expected: &BTreeMap<String, String>,
    seen: &mut BTreeSet<String>,
) {
    let deadline = tokio::time::Instant::now() + RECEIVE_LIMIT;
    while !expected.keys().all(|id| seen.contains(id)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(fired) = consumer.next(left).await else {
            break;
        };
        seen.insert(fired.message_id.unwrap_or_default());
    }
}

fn assert_every_timer_fired(seen: &BTreeSet<String>, expected: &BTreeMap<String, String>) {
    let missing: Vec<&String> = expected
        .iter()
        .filter(|(id, _)| !seen.contains(*id))
        .map(|(_, timer)| timer)
        .collect();
    assert!(
        missing.is_empty(),
        "{} timers never fired: {missing:?}",
        missing.len()
    );
    assert!(
        seen.iter().all(|id| expected.contains_key(id)),
        "a message id that belongs to no timer arrived"
    );
}

async fn readiness(stack: &Stack) -> Result<StatusCode> {
    let url = format!("{}/readyz", stack.workers[0].admin_url);
    Ok(stack.http.get(url).send().await?.status())
}

/// Cuts `proxy` once a fifth of the burst arrived, checks the worker stops being ready,
/// restores it, and checks every timer fires.
async fn cut_in_the_middle_of_a_burst(stack: &Stack, proxy: &Proxy) -> Result<()> {
    let mut consumer = stack.consumer("acme.#").await?;
    let expected = seed_burst(stack).await?;

    let before = consumer.collect(BURST / 5, Duration::from_secs(60)).await;
    assert_eq!(before.len(), BURST / 5, "the burst did not start");
    proxy.cut().await;
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(readiness(stack).await?, StatusCode::SERVICE_UNAVAILABLE);
    proxy.restore();

    let mut seen: BTreeSet<String> = before
        .into_iter()
        .map(|fired| fired.message_id.unwrap_or_default())
        .collect();
    receive_rest(&mut consumer, &expected, &mut seen).await;
    assert_every_timer_fired(&seen, &expected);
    Ok(())
}

#[tokio::test]
async fn a_broker_outage_in_the_middle_of_a_burst_delays_fires_but_loses_none() -> Result<()> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&amqp_url())).await?;
    let through = url_through(&amqp_url(), &proxy);
    stack
        .start_worker(&[
            ("AMQP_URL", &through),
            ("CLOCKWORKS_CLAIM_BATCH_SIZE", SMALL_BATCH),
        ])
        .await?;

    cut_in_the_middle_of_a_burst(&stack, &proxy).await?;

    stack.shutdown().await
}

#[tokio::test]
async fn a_database_outage_in_the_middle_of_a_burst_delays_fires_but_loses_none() -> Result<()> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&stack.db.url)).await?;
    let through = url_through(&stack.db.url, &proxy);
    stack
        .start_worker(&[
            ("DATABASE_URL", &through),
            ("CLOCKWORKS_CLAIM_BATCH_SIZE", SMALL_BATCH),
        ])
        .await?;

    cut_in_the_middle_of_a_burst(&stack, &proxy).await?;

    stack.shutdown().await
}
