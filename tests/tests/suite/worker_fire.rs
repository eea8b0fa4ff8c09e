//! The worker's fire path, one timer at a time, against the real binary, PostgreSQL and
//! RabbitMQ: the message a consumer receives, when it arrives, and what the database records.
//! Timers are written straight into the test's database.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clockworks::message::{self, FiredEvent};
use clockworks_tests::Stack;
use clockworks_tests::seed::{self, SeedTimer};
use jiff::Timestamp;
use serde_json::json;

/// Generous bound for things that should take milliseconds on an idle machine.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(10);

/// The state, fire count, next fire and failure reason of a timer row.
#[derive(Debug, PartialEq)]
struct Row {
    state: String,
    fire_count: i64,
    next_fire_at: Option<Timestamp>,
    last_fired_at: Option<Timestamp>,
    failure_reason: Option<String>,
}

async fn row(client: &tokio_postgres::Client, namespace: &str, id: &str) -> Result<Row> {
    let row = client
        .query_one(
            "select state, fire_count, next_fire_at, last_fired_at, failure_reason
             from timers
             where namespace = $1
               and id = $2",
            &[&namespace, &id],
        )
        .await?;
    Ok(Row {
        state: row.get(0),
        fire_count: row.get(1),
        next_fire_at: row.get(2),
        last_fired_at: row.get(3),
        failure_reason: row.get(4),
    })
}

/// The row once it has left the `scheduled` state (the consumer may see a fire a moment
/// before the worker commits it).
async fn settled_row(client: &tokio_postgres::Client, namespace: &str, id: &str) -> Result<Row> {
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    loop {
        let current = row(client, namespace, id).await?;
        if current.state != "scheduled" || tokio::time::Instant::now() > deadline {
            return Ok(current);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(fire_seq, scheduled_at, fired_at)` of every recorded fire of a timer.
async fn fires(
    client: &tokio_postgres::Client,
    namespace: &str,
    id: &str,
) -> Result<Vec<(i64, Timestamp, Timestamp)>> {
    let rows = client
        .query(
            "select fire_seq, scheduled_at, fired_at
             from fires
             where namespace = $1
               and timer_id = $2
             order by fire_seq",
            &[&namespace, &id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
}

async fn metrics(stack: &Stack) -> Result<String> {
    let url = format!("{}/metrics", stack.workers[0].admin_url);
    Ok(stack.http.get(url).send().await?.text().await?)
}

#[tokio::test]
async fn a_timer_due_in_one_second_fires_once_with_the_contract_message_and_never_early()
-> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, 1000).await?;
    let mut timer = SeedTimer::at("acme", "order-42", due);
    timer.group = Some("orders".to_owned());
    timer.routing_key = "orders.reminder".to_owned();
    timer.payload = json!({"order": 42});
    timer.headers = json!({"trace-id": "abc"});
    seed::insert(&client, std::slice::from_ref(&timer)).await?;

    let fired = consumer
        .next(ARRIVAL_LIMIT)
        .await
        .expect("the timer fired within the limit");
    let delay_ms = fired.received_at.duration_since(due).as_secs_f64() * 1000.0;
    eprintln!("timer due in 1 s consumed {delay_ms:.1} ms after its due time");
    assert!(
        fired.received_at >= due,
        "received at {} before its due time {due}",
        fired.received_at
    );

    assert_eq!(fired.routing_key, "acme.orders.reminder");
    assert_eq!(fired.content_type.as_deref(), Some("application/json"));
    assert!(fired.persistent);
    assert_eq!(fired.message_id, Some(message::message_id(timer.uid, 1)));
    let expected_headers: BTreeMap<String, String> = [
        ("clockworks-timer-id", "order-42".to_owned()),
        ("clockworks-namespace", "acme".to_owned()),
        ("clockworks-scheduled-at", due.to_string()),
        ("clockworks-fire-seq", "1".to_owned()),
        ("trace-id", "abc".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(fired.headers, expected_headers);

    let event: FiredEvent = serde_json::from_value(fired.body.clone())?;
    assert!(
        event.fired_at >= due,
        "fired_at {} is before {due}",
        event.fired_at
    );
    assert_eq!(
        event,
        FiredEvent {
            timer_id: "order-42".to_owned(),
            namespace: "acme".to_owned(),
            group: Some("orders".to_owned()),
            fire_seq: 1,
            scheduled_at: due,
            fired_at: event.fired_at,
            payload: json!({"order": 42}),
        }
    );
    let timestamp = fired
        .timestamp
        .expect("the message carries its publish time");
    assert_eq!(timestamp, event.fired_at.as_second() as u64);

    assert_eq!(
        settled_row(&client, "acme", "order-42").await?,
        Row {
            state: "completed".to_owned(),
            fire_count: 1,
            next_fire_at: None,
            last_fired_at: Some(event.fired_at),
            failure_reason: None,
        }
    );
    assert_eq!(
        fires(&client, "acme", "order-42").await?,
        [(1, due, event.fired_at)]
    );

    let again = consumer.collect_for(Duration::from_secs(1)).await;
    assert!(again.is_empty(), "fired again: {again:?}");
    assert!(
        metrics(&stack)
            .await?
            .contains("clockworks_fires_total{outcome=\"delivered\"} 1")
    );

    stack.shutdown().await
}

#[tokio::test]
async fn a_timer_deleted_before_its_due_time_never_fires() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, 1500).await?;
    let cancelled = SeedTimer::at("acme", "cancelled", due);
    let control = SeedTimer::at("acme", "control", due);
    seed::insert(&client, &[cancelled, control]).await?;
    client
        .execute(
            "delete from timers where namespace = $1 and id = $2",
            &[&"acme", &"cancelled"],
        )
        .await?;

    // Past the due time, with a margin, everything that was going to fire has.
    let fired = consumer
        .collect_for(Duration::from_millis(1500 + 2500))
        .await;
    let ids: Vec<&str> = fired.iter().map(|fired| fired.timer_id()).collect();
    assert_eq!(ids, ["control"]);
    assert!(fires(&client, "acme", "cancelled").await?.is_empty());

    stack.shutdown().await
}

#[tokio::test]
async fn a_timer_already_past_due_fires_at_once() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, -3_600_000).await?;
    seed::insert(&client, &[SeedTimer::at("acme", "overdue", due)]).await?;
    let inserted_at = Timestamp::now();

    let fired = consumer
        .next(ARRIVAL_LIMIT)
        .await
        .expect("the overdue timer fired at once");
    assert_eq!(fired.timer_id(), "overdue");
    assert_eq!(fired.scheduled_at(), due);
    eprintln!(
        "overdue timer consumed {} ms after it was inserted",
        fired.received_at.duration_since(inserted_at).as_millis()
    );
    assert_eq!(
        settled_row(&client, "acme", "overdue").await?.state,
        "completed"
    );

    stack.shutdown().await
}

#[tokio::test]
async fn a_timer_with_a_corrupt_schedule_is_set_aside_while_a_healthy_one_fires() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, 1000).await?;
    let mut corrupt = SeedTimer::at("acme", "corrupt", due);
    corrupt.schedule = json!({"at": "whenever", "bogus": true});
    // The corrupt row comes first in due order, so it is claimed with or before the other.
    corrupt.next_fire_at = Timestamp::from_millisecond(due.as_millisecond() - 1)?;
    let healthy = SeedTimer::at("acme", "healthy", due);
    seed::insert(&client, &[corrupt, healthy]).await?;

    let fired = consumer
        .next(ARRIVAL_LIMIT)
        .await
        .expect("the healthy timer fired");
    assert_eq!(fired.timer_id(), "healthy");

    let set_aside = settled_row(&client, "acme", "corrupt").await?;
    assert_eq!(set_aside.state, "failed");
    assert_eq!(set_aside.fire_count, 0);
    assert_eq!(set_aside.next_fire_at, None);
    let reason = set_aside
        .failure_reason
        .expect("a set-aside timer says why");
    assert!(reason.contains("schedule"), "{reason}");

    let more = consumer.collect_for(Duration::from_secs(1)).await;
    assert!(more.is_empty(), "the corrupt timer fired: {more:?}");
    assert!(fires(&client, "acme", "corrupt").await?.is_empty());
    assert!(
        metrics(&stack)
            .await?
            .contains("clockworks_fires_total{outcome=\"failed\"} 1")
    );

    stack.shutdown().await
}
