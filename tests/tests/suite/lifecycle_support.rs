//! What the end-to-end lifecycle tests share: an api, workers that can be stopped and
//! started again, a consumer of the namespace's fired events, and readers of what arrived.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clockworks_tests::{Consumer, Fired, Stack};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One period of the `every: 1s` timers these tests use.
pub const PERIOD: SignedDuration = SignedDuration::from_secs(1);
/// Generous bound for something that takes milliseconds on an idle machine.
pub const ARRIVAL_LIMIT: Duration = Duration::from_secs(15);
/// Longest wait for a worker asked to stop to exit.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A running stack with a read-write key of namespace `acme` and a consumer of everything
/// `acme` fires.
pub struct Lifecycle {
    pub stack: Stack,
    pub key: String,
    pub consumer: Consumer,
}

impl Lifecycle {
    /// An api and one worker (which declares the exchange the consumer binds to).
    pub async fn start() -> Result<Lifecycle> {
        let stack = Stack::start(1).await?;
        let key = stack
            .create_key("acme", &["timers:read", "timers:write"])
            .await?;
        let consumer = stack.consumer("acme.#").await?;
        Ok(Lifecycle {
            stack,
            key,
            consumer,
        })
    }

    /// Sends a request and returns its status and JSON body (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .stack
            .http
            .request(method, self.stack.url(path))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, body))
    }

    /// Creates or replaces the timer `id`; returns it.
    pub async fn put(&self, id: &str, timer: &Value) -> Result<Value> {
        let path = format!("/v1/timers/{id}");
        let (status, body) = self.send(Method::PUT, &path, Some(timer)).await?;
        ensure!(status.is_success(), "PUT {path}: {status} {body}");
        Ok(body)
    }

    /// `POST /v1/timers/{id}/{action}`; returns the timer afterwards.
    pub async fn act(&self, id: &str, action: &str) -> Result<Value> {
        let path = format!("/v1/timers/{id}/{action}");
        let (status, body) = self.send(Method::POST, &path, None).await?;
        ensure!(status == StatusCode::OK, "POST {path}: {status} {body}");
        Ok(body)
    }

    /// `GET` of a path that must answer 200.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        ensure!(status == StatusCode::OK, "GET {path}: {status} {body}");
        Ok(body)
    }

    /// The database clock, which decides what is due.
    pub async fn database_now(&self) -> Result<Timestamp> {
        let client = self.stack.db.client().await?;
        clockworks_tests::seed::database_now(&client).await
    }

    /// Asks every worker to stop and waits until each has exited; a batch in flight is
    /// finished and recorded first, so nothing is published and left unrecorded.
    pub async fn stop_workers(&mut self) -> Result<()> {
        for mut worker in self.stack.workers.drain(..) {
            worker.process.signal("TERM").await?;
            let status = worker.process.wait_exit(STOP_LIMIT).await?;
            ensure!(status.success(), "a worker exited with {status}");
        }
        Ok(())
    }

    pub async fn start_worker(&mut self) -> Result<()> {
        self.stack.start_worker(&[]).await?;
        Ok(())
    }

    /// Everything the consumer receives within `window`.
    pub async fn fired_within(&mut self, window: Duration) -> Vec<Fired> {
        self.consumer.collect_for(window).await
    }

    /// The next `count` fired events, failing if they do not arrive in time.
    pub async fn next_fires(&mut self, count: usize) -> Result<Vec<Fired>> {
        let limit = ARRIVAL_LIMIT + Duration::from_secs(2 * count as u64);
        let fired = self.consumer.collect(count, limit).await;
        ensure!(
            fired.len() == count,
            "{} of {count} fires arrived: {:?}",
            fired.len(),
            summary(&fired)
        );
        Ok(fired)
    }

    pub async fn shutdown(self) -> Result<()> {
        self.stack.shutdown().await
    }
}

/// The fire sequence number of a fired event.
pub fn fire_seq(fired: &Fired) -> i64 {
    fired.body["fire_seq"]
        .as_i64()
        .expect("every fired event has fire_seq")
}

/// `(timer id, fire_seq, scheduled_at)` of each event, for failure messages.
pub fn summary(fired: &[Fired]) -> Vec<(String, i64, Timestamp)> {
    fired
        .iter()
        .map(|fired| {
            (
                fired.timer_id().to_owned(),
                fire_seq(fired),
                fired.scheduled_at(),
            )
        })
        .collect()
}

/// The events of one timer, in fire sequence order.
pub fn of_timer(fired: &[Fired], id: &str) -> Vec<Fired> {
    let mut own: Vec<Fired> = fired
        .iter()
        .filter(|fired| fired.timer_id() == id)
        .cloned()
        .collect();
    own.sort_by_key(fire_seq);
    own
}

/// Checks that no event arrived before it was due, by the local clock of this machine,
/// which the database shares.
pub fn assert_none_early(fired: &[Fired]) {
    for event in fired {
        assert!(
            event.received_at >= event.scheduled_at(),
            "fire {} of {} arrived at {}, before its slot {}",
            fire_seq(event),
            event.timer_id(),
            event.received_at,
            event.scheduled_at()
        );
    }
}

/// Reads an instant field of a timer.
pub fn instant(timer: &Value, field: &str) -> Result<Timestamp> {
    timer[field]
        .as_str()
        .with_context(|| format!("{field} of {timer}"))?
        .parse()
        .with_context(|| format!("{field} of {timer}"))
}
