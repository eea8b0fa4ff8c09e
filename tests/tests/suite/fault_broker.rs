//! RabbitMQ failing under the worker: cut for ten seconds while timers come due, never
//! confirming, losing the exchange mid-run, and having no queue for a fire. The worker
//! reaches the broker through a proxy where the fault needs one. In every case a timer is
//! marked fired only after the broker confirmed it, and every timer fires, late at worst.

use crate::fault_support;

use std::time::Duration;

use anyhow::Result;
use clockworks::message;
use clockworks_tests::proxy::url_through;
use clockworks_tests::seed::{self, SeedTimer};
use clockworks_tests::stack::amqp_url;
use clockworks_tests::{Proxy, Stack};
use fault_support::{
    Deliveries, QueueReader, RECEIVE_LIMIT, await_readiness, metric, readiness, recorded, seed_due,
    settled, upstream,
};
use lapin::options::ExchangeDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use reqwest::StatusCode;

const BROKER_CUT: Duration = Duration::from_secs(10);
const BROKER_STALL: Duration = Duration::from_secs(8);
/// Short, so that the stall outlasts a confirm timeout with room to spare.
const CONFIRM_TIMEOUT_MS: &str = "1000";
/// Generous bound for a state change the worker should notice within a second or two.
const NOTICE_WITHIN: Duration = Duration::from_secs(15);
const UNCONFIRMED: &str = "clockworks_fires_total{outcome=\"unconfirmed\"}";
const DELIVERED: &str = "clockworks_fires_total{outcome=\"delivered\"}";

/// A stack with one worker that reaches the broker through the returned proxy.
async fn worker_behind_a_broker_proxy(env: &[(&str, &str)]) -> Result<(Stack, Proxy)> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&amqp_url()).await?).await?;
    let through = url_through(&amqp_url(), &proxy);
    let mut all_env = vec![("AMQP_URL", through.as_str())];
    all_env.extend_from_slice(env);
    stack.start_worker(&all_env).await?;
    Ok((stack, proxy))
}

#[tokio::test]
async fn a_broker_cut_for_ten_seconds_while_a_thousand_timers_come_due_loses_none() -> Result<()> {
    let (stack, proxy) = worker_behind_a_broker_proxy(&[]).await?;
    let admin = stack.workers[0].admin_url.clone();
    let mut consumer = stack.consumer("acme.#").await?;
    let seeded = seed_due(&stack, 1_000, 3_000).await?;

    proxy.cut().await;
    let cut_at = tokio::time::Instant::now();
    assert!(
        await_readiness(
            &stack,
            &admin,
            StatusCode::SERVICE_UNAVAILABLE,
            NOTICE_WITHIN
        )
        .await?,
        "the worker stayed ready without its broker"
    );
    tokio::time::sleep_until(cut_at + BROKER_CUT).await;
    assert_eq!(
        readiness(&stack, &admin).await?,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let during = consumer.collect_for(Duration::ZERO).await;
    assert!(during.is_empty(), "fires arrived through a cut broker");
    assert_eq!(
        recorded(&stack).await?,
        (0, 0),
        "a fire was recorded that the broker could not have confirmed"
    );
    proxy.restore();

    assert!(
        await_readiness(&stack, &admin, StatusCode::OK, NOTICE_WITHIN).await?,
        "the worker did not become ready again"
    );
    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    let repeated = deliveries.assert_promises(&seeded);
    eprintln!("after a 10 s broker cut: 1000 timers fired, {repeated} repeated deliveries");
    assert_eq!(settled(&stack, 1_000, NOTICE_WITHIN).await?, (1_000, 1_000));

    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn a_broker_that_never_confirms_gets_no_timer_marked_fired_and_all_fire_once_it_does()
-> Result<()> {
    let (stack, proxy) =
        worker_behind_a_broker_proxy(&[("CLOCKWORKS_CONFIRM_TIMEOUT_MS", CONFIRM_TIMEOUT_MS)])
            .await?;
    let admin = stack.workers[0].admin_url.clone();
    let mut consumer = stack.consumer("acme.#").await?;

    proxy.stall();
    let stalled_at = tokio::time::Instant::now();
    let seeded = seed_due(&stack, 200, 500).await?;
    while stalled_at.elapsed() < BROKER_STALL {
        assert_eq!(
            recorded(&stack).await?,
            (0, 0),
            "a fire was recorded without the broker's confirm"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        metric(&stack, &admin, UNCONFIRMED).await? >= 200.0,
        "the batch was not rolled back after the confirm timeout"
    );
    assert!(consumer.collect_for(Duration::ZERO).await.is_empty());
    proxy.restore();

    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    let repeated = deliveries.assert_promises(&seeded);
    eprintln!("after a stalled broker: 200 timers fired, {repeated} repeated deliveries");
    assert_eq!(settled(&stack, 200, NOTICE_WITHIN).await?, (200, 200));

    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn an_exchange_deleted_under_the_worker_is_declared_again_and_the_timer_fires_once()
-> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let admin = stack.workers[0].admin_url.clone();
    let unrouted_queue = format!("{}.unrouted", stack.exchange);
    let mut unrouted = QueueReader::open(&amqp_url(), &unrouted_queue).await?;

    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_delete(
            stack.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await?;
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, 500).await?;
    let timer = SeedTimer::at("acme", "after-the-delete", due);
    seed::insert(&client, std::slice::from_ref(&timer)).await?;

    // The worker's first publish meets no exchange and the broker closes its channel; the
    // worker connects again and declares the exchange, which no queue is bound to any more,
    // so the fire goes on to the alternate exchange.
    let messages = unrouted.collect(2, Duration::from_secs(30)).await?;
    let expected = message::message_id(timer.uid, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].message_id.as_ref(), Some(&expected));
    assert_eq!(messages[0].routing_key, "acme.fired");
    assert!(metric(&stack, &admin, UNCONFIRMED).await? >= 1.0);
    assert_eq!(settled(&stack, 1, NOTICE_WITHIN).await?, (1, 1));
    let log = stack.workers[0].process.log()?;
    assert!(
        log.matches("declared the topology").count() >= 2,
        "the worker did not declare its topology again: {log}"
    );

    let _ = connection.close(200, "done".into()).await;
    stack.shutdown().await
}

#[tokio::test]
async fn a_fire_no_queue_is_bound_for_lands_in_the_unrouted_queue_and_nothing_is_returned()
-> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let admin = stack.workers[0].admin_url.clone();
    let unrouted_queue = format!("{}.unrouted", stack.exchange);
    let mut unrouted = QueueReader::open(&amqp_url(), &unrouted_queue).await?;

    let seeded = seed_due(&stack, 3, 500).await?;

    let messages = unrouted.collect(4, Duration::from_secs(20)).await?;
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|message| message.message_id.clone())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = seeded.message_ids.values().cloned().collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(messages.iter().all(|m| m.routing_key == "acme.fired"));
    assert_eq!(settled(&stack, 3, NOTICE_WITHIN).await?, (3, 3));
    assert_eq!(metric(&stack, &admin, DELIVERED).await?, 3.0);
    assert_eq!(
        metric(&stack, &admin, UNCONFIRMED).await?,
        0.0,
        "a fire was returned or refused"
    );

    stack.shutdown().await
}
