//! What the fault tests share: the address a proxy forwards to, timers seeded due at one
//! instant, what the database recorded of them, the worker's readiness and metrics, and the
//! promises every fault test checks on what a consumer received: every timer fired, none
//! before its due instant, and a fire delivered twice carries the same message id both times.

// Each fault test file uses its own part of this module.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clockworks::message;
use clockworks_tests::seed::{self, SeedTimer};
use clockworks_tests::{Consumer, Fired, Stack};
use futures::StreamExt;
use jiff::Timestamp;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use reqwest::StatusCode;
use tokio::time::Instant;

/// The namespace every seeded timer belongs to; a consumer bound to `acme.#` sees them all.
pub const NAMESPACE: &str = "acme";
/// Generous bound for every seeded timer to arrive once nothing stands in the way.
pub const RECEIVE_LIMIT: Duration = Duration::from_secs(120);
/// After the last expected fire, how long to keep listening for repeated ones.
pub const QUIET_WINDOW: Duration = Duration::from_secs(2);
/// How often a condition the test waits for is looked at again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The socket address behind a `scheme://[user@]host:port/...` URL, for a proxy to forward to.
pub async fn upstream(url: &str) -> Result<SocketAddr> {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split(['/', '?']).next())
        .context("a URL with a scheme")?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    tokio::net::lookup_host(host_port)
        .await?
        .next()
        .context("the host resolves")
}

/// One-shot timers seeded into a test's database, all due at one instant.
pub struct Seeded {
    pub due: Timestamp,
    /// The message id each timer's first (and only) fire must carry, by timer id.
    pub message_ids: BTreeMap<String, String>,
}

impl Seeded {
    pub fn len(&self) -> usize {
        self.message_ids.len()
    }
}

/// Inserts `count` one-shot timers of [`NAMESPACE`] due `delay_ms` after the database's now
/// (before it, if negative).
pub async fn seed_due(stack: &Stack, count: usize, delay_ms: i64) -> Result<Seeded> {
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, delay_ms).await?;
    let timers: Vec<SeedTimer> = (0..count)
        .map(|n| SeedTimer::at(NAMESPACE, &format!("t-{n:05}"), due))
        .collect();
    seed::insert(&client, &timers).await?;
    let message_ids = timers
        .iter()
        .map(|timer| (timer.id.clone(), message::message_id(timer.uid, 1)))
        .collect();
    Ok(Seeded { due, message_ids })
}

/// Everything a consumer received, repeated deliveries included.
#[derive(Default)]
pub struct Deliveries(pub Vec<Fired>);

impl Deliveries {
    /// Receives until every seeded timer arrived at least once or `limit` passed, then for a
    /// quiet window more, in which repeated fires would show.
    pub async fn receive(&mut self, consumer: &mut Consumer, seeded: &Seeded, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut arrived: BTreeSet<String> = self
            .0
            .iter()
            .map(|fired| fired.timer_id().to_owned())
            .collect();
        while arrived.len() < seeded.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(fired) = consumer.next(left).await else {
                break;
            };
            arrived.insert(fired.timer_id().to_owned());
            self.0.push(fired);
        }
        self.0.extend(consumer.collect_for(QUIET_WINDOW).await);
    }

    /// Asserts the promises: every seeded timer fired, none early, each delivery carries its
    /// timer's message id (so a repeated fire is recognisable) and nothing else arrived.
    /// Returns how many deliveries repeated an earlier one.
    pub fn assert_promises(&self, seeded: &Seeded) -> usize {
        for fired in &self.0 {
            let timer = fired.timer_id();
            let expected = seeded.message_ids.get(timer);
            assert!(expected.is_some(), "{timer:?} is not a seeded timer");
            assert_eq!(
                fired.message_id.as_ref(),
                expected,
                "{timer} arrived with another message id"
            );
            assert_eq!(fired.scheduled_at(), seeded.due, "{timer}");
            assert!(
                fired.received_at >= fired.scheduled_at(),
                "{timer} fired early: received at {}, due at {}",
                fired.received_at,
                fired.scheduled_at()
            );
        }

        let arrived: BTreeSet<&str> = self.0.iter().map(Fired::timer_id).collect();
        let missing: Vec<&String> = seeded
            .message_ids
            .keys()
            .filter(|timer| !arrived.contains(timer.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} timers never fired: {missing:?}",
            missing.len(),
            seeded.len()
        );
        self.0.len() - arrived.len()
    }
}

/// `(fires recorded, timers completed)` in the test's database.
pub async fn recorded(stack: &Stack) -> Result<(i64, i64)> {
    let client = stack.db.client().await?;
    let row = client
        .query_one(
            "select (select count(*) from fires),
                    (select count(*) from timers where state = 'completed')",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Waits until the database recorded `count` fires and completed `count` timers (the
/// consumer may see a fire a moment before its worker commits it), or until `limit`.
pub async fn settled(stack: &Stack, count: usize, limit: Duration) -> Result<(i64, i64)> {
    let deadline = Instant::now() + limit;
    loop {
        let counts = recorded(stack).await?;
        let count = i64::try_from(count)?;
        if counts == (count, count) || Instant::now() > deadline {
            return Ok(counts);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The status of a worker's `/readyz`.
pub async fn readiness(stack: &Stack, admin_url: &str) -> Result<StatusCode> {
    let url = format!("{admin_url}/readyz");
    Ok(stack.http.get(url).send().await?.status())
}

/// Waits until a worker's `/readyz` answers `wanted`; whether it did within `limit`.
pub async fn await_readiness(
    stack: &Stack,
    admin_url: &str,
    wanted: StatusCode,
    limit: Duration,
) -> Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        if readiness(stack, admin_url).await? == wanted {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The value of one series (`name{label="value"}`) on a worker's `/metrics`; 0 when absent.
pub async fn metric(stack: &Stack, admin_url: &str, series: &str) -> Result<f64> {
    let url = format!("{admin_url}/metrics");
    let text = stack.http.get(url).send().await?.text().await?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(Ok(0.0), str::parse)?;
    Ok(value)
}

/// Since when (by the database clock) a session of the test's database has been idle inside
/// a transaction that holds row locks: a worker between its claim and its commit.
pub async fn claim_held_since(client: &tokio_postgres::Client) -> Result<Option<Timestamp>> {
    let row = client
        .query_opt(
            "select state_change
             from pg_stat_activity
             where datname = current_database()
               and pid <> pg_backend_pid()
               and state = 'idle in transaction'
               and backend_xid is not null
             order by state_change
             limit 1",
            &[],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Waits until some worker holds a claim; when it began to, by the database clock.
pub async fn await_claim(stack: &Stack, limit: Duration) -> Result<Timestamp> {
    let client = stack.db.client().await?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(since) = claim_held_since(&client).await? {
            return Ok(since);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no worker claimed within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer of a queue that already exists, such as a worker's `<exchange>.unrouted`.
pub struct QueueReader {
    _connection: Connection,
    consumer: lapin::Consumer,
}

/// One message as a [`QueueReader`] saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub message_id: Option<String>,
    pub routing_key: String,
}

impl QueueReader {
    pub async fn open(amqp_url: &str, queue: &str) -> Result<QueueReader> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "clockworks-fault-test".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("consuming queue {queue}"))?;
        Ok(QueueReader {
            _connection: connection,
            consumer,
        })
    }

    /// Messages until `count` arrived or `limit` passed, whichever is first.
    pub async fn collect(&mut self, count: usize, limit: Duration) -> Result<Vec<Message>> {
        let deadline = Instant::now() + limit;
        let mut messages = Vec::new();
        while messages.len() < count {
            let Ok(Some(delivery)) = tokio::time::timeout_at(deadline, self.consumer.next()).await
            else {
                break;
            };
            let delivery = delivery?;
            messages.push(Message {
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(ToString::to_string),
                routing_key: delivery.routing_key.to_string(),
            });
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Ok(messages)
    }
}
