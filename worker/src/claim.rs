//! The claim loop, the heart of the worker. Each turn claims a batch of due timers in one
//! transaction on a dedicated connection, publishes them with confirms, and only after every
//! confirm advances them and records their fires in the same transaction; then it sleeps until
//! the next timer is due (or an announcement says one is due sooner).
//!
//! A fire whose publication was not confirmed is never recorded: the transaction rolls back
//! and the timers come due again for any worker. A fire confirmed but not committed (the
//! worker died in between) is published again later with the same message id.
//! A fire later than its timer's `expire_after` allows is recorded as expired in the same
//! transaction, counted, and never published.

use std::time::Duration;

use clockworks::config::{AmqpArgs, redact_url};
use clockworks::store::firing::{self, ClaimedTimer, SetAside};
use jiff::Timestamp;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admin::{BROKER_CONNECTED, DATABASE_CONNECTED, Health};
use crate::backoff::Backoff;
use crate::fire::Fire;
use crate::publish::{PublishError, Publisher};
use crate::wake::{Clock, DueSignal};

const FIRES_TOTAL: &str = "clockworks_fires_total";
const FIRE_LATENESS: &str = "clockworks_fire_lateness_seconds";
const CLAIM_BATCH_SIZE: &str = "clockworks_claim_batch_size";
const CLAIM_DURATION: &str = "clockworks_claim_duration_seconds";
const PUBLISH_CONFIRM: &str = "clockworks_publish_confirm_seconds";

/// Longest sleep without asking the database what is due next, in case an announcement was
/// lost. Timers due more than 10 seconds after they are written are not announced at all
/// (migration V4): this recheck finds them in time, so it must stay well under that.
const SAFETY_RECHECK: Duration = Duration::from_secs(5);
/// First and longest delay between reconnection attempts.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// First and longest delay before claiming again a timer that is due but was not claimable:
/// another worker holds it, or this claim's transaction began a hair before it came due.
const HELD_RECHECK_FIRST: Duration = Duration::from_millis(2);
const HELD_RECHECK_MAX: Duration = Duration::from_millis(250);

/// What the claim loop needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub amqp: AmqpArgs,
    pub batch_size: i64,
    pub confirm_timeout: Duration,
    pub claim_hold: Duration,
}

#[derive(Debug, Error)]
enum BatchError {
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("broker: {0}")]
    Broker(#[from] PublishError),
}

/// What to do after one turn of the loop.
enum Next {
    /// Go round again at once: the claim filled a whole batch, or a connection was lost.
    Again,
    /// Sleep until this instant unless an earlier due instant is announced.
    SleepUntil(Instant),
}

/// A connection that may be down, and when to try opening it again.
struct Link<T> {
    open: Option<T>,
    backoff: Backoff,
    retry_at: Instant,
}

impl<T> Link<T> {
    fn new() -> Link<T> {
        Link {
            open: None,
            backoff: Backoff::new(RECONNECT_FIRST, RECONNECT_MAX),
            retry_at: Instant::now(),
        }
    }

    /// Forgets a failed connection; the next attempt waits the next backoff delay.
    fn fail(&mut self) -> Option<T> {
        self.retry_at = Instant::now() + self.backoff.next_delay();
        self.open.take()
    }
}

/// The claiming connection with the fire path's statements prepared on it.
struct ClaimSession {
    client: tokio_postgres::Client,
    statements: firing::Statements,
}

/// The claim loop with its two connections: PostgreSQL for claims and RabbitMQ for fires.
pub struct ClaimLoop {
    settings: Settings,
    health: Health,
    due: DueSignal,
    clock: Clock,
    database: Link<ClaimSession>,
    broker: Link<Publisher>,
    held_recheck: Backoff,
}

impl ClaimLoop {
    pub fn new(settings: Settings, health: Health, due: DueSignal) -> ClaimLoop {
        ClaimLoop {
            settings,
            health,
            due,
            clock: Clock::default(),
            database: Link::new(),
            broker: Link::new(),
            held_recheck: Backoff::new(HELD_RECHECK_FIRST, HELD_RECHECK_MAX),
        }
    }

    /// Claims and fires until `stop` turns true; a batch in flight is finished first.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while !stopping(&stop) {
            if let Next::SleepUntil(deadline) = self.turn().await {
                self.sleep_until(deadline, &mut stop).await;
            }
        }

        if let Some(publisher) = self.broker.open.take() {
            publisher.close().await;
        }
        tracing::info!("stopped claiming");
    }

    async fn turn(&mut self) -> Next {
        if let Err(retry_at) = self.connect_database().await {
            return Next::SleepUntil(retry_at);
        }
        if let Err(retry_at) = self.connect_broker().await {
            return Next::SleepUntil(retry_at);
        }
        let (Some(database), Some(publisher)) = (&mut self.database.open, &self.broker.open) else {
            return Next::Again;
        };

        match fire_batch(database, publisher, &self.clock, &self.settings).await {
            Ok(claimed) => {
                self.database.backoff.reset();
                self.broker.backoff.reset();
                if i64::try_from(claimed).is_ok_and(|claimed| claimed >= self.settings.batch_size) {
                    Next::Again
                } else {
                    self.plan_wake(claimed).await
                }
            }
            Err(BatchError::Database(err)) => {
                tracing::warn!(cause = %err, "a claim failed on the database; reconnecting");
                self.lose_database();
                Next::Again
            }
            Err(BatchError::Broker(err)) => {
                tracing::warn!(cause = %err, "a batch was not confirmed; rolled back");
                self.lose_broker().await;
                Next::Again
            }
        }
    }

    /// Opens the claiming connection unless it is open; `Err` holds when to try again.
    async fn connect_database(&mut self) -> Result<(), Instant> {
        match &self.database.open {
            Some(session) if !session.client.is_closed() => return Ok(()),
            Some(_) => {
                tracing::warn!("the claiming database connection closed");
                self.lose_database();
            }
            None => {}
        }
        if Instant::now() < self.database.retry_at {
            return Err(self.database.retry_at);
        }

        match open_claim_session(&self.settings).await {
            Ok(session) => {
                tracing::info!(
                    database.url = %redact_url(&self.settings.database_url),
                    "connected to the database"
                );
                self.database.open = Some(session);
                self.health.set_database(true);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(cause = %err, "connecting to the database failed");
                self.lose_database();
                Err(self.database.retry_at)
            }
        }
    }

    /// Connects to the broker unless connected; `Err` holds when to try again.
    async fn connect_broker(&mut self) -> Result<(), Instant> {
        match &self.broker.open {
            Some(publisher) if publisher.is_connected() => return Ok(()),
            Some(_) => {
                tracing::warn!("the broker connection closed");
                self.lose_broker().await;
            }
            None => {}
        }
        if Instant::now() < self.broker.retry_at {
            return Err(self.broker.retry_at);
        }

        match Publisher::connect(&self.settings.amqp, &self.health).await {
            Ok(publisher) => {
                self.broker.open = Some(publisher);
                self.health.set_broker(true);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(cause = %err, "connecting to the broker failed");
                self.lose_broker().await;
                Err(self.broker.retry_at)
            }
        }
    }

    fn lose_database(&mut self) {
        self.health.set_database(false);
        self.database.fail();
    }

    async fn lose_broker(&mut self) {
        self.health.set_broker(false);
        if let Some(publisher) = self.broker.fail() {
            publisher.close().await;
        }
    }

    /// After a partial batch: asks the database when the next timer is due (which also
    /// measures the clock offset) and decides how long to sleep.
    async fn plan_wake(&mut self, claimed: usize) -> Next {
        let Some(session) = &self.database.open else {
            return Next::Again;
        };

        // Every announcement received until now is covered by the answer to this query.
        self.due.take();
        let sent_at = Timestamp::now();
        let probe = match firing::earliest_due(&session.client, &session.statements).await {
            Ok(probe) => probe,
            Err(err) => {
                tracing::warn!(cause = %err, "asking the database what is due failed");
                self.lose_database();
                return Next::Again;
            }
        };
        self.clock
            .observe(sent_at, probe.database_now, Timestamp::now());

        let now = Instant::now();
        match probe.earliest_due {
            Some(due) if due <= probe.database_now && claimed == 0 => {
                Next::SleepUntil(now + self.held_recheck.next_delay())
            }
            Some(due) if due <= probe.database_now => {
                self.held_recheck.reset();
                Next::Again
            }
            Some(due) => {
                self.held_recheck.reset();
                Next::SleepUntil(self.clock.local_instant(due).min(now + SAFETY_RECHECK))
            }
            None => {
                self.held_recheck.reset();
                Next::SleepUntil(now + SAFETY_RECHECK)
            }
        }
    }

    /// Sleeps until `deadline`, or until an announced due instant comes first, or until the
    /// worker is asked to stop.
    async fn sleep_until(&mut self, mut deadline: Instant, stop: &mut watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = stop.changed() => return,
                announced = self.due.announced() => {
                    deadline = deadline.min(self.clock.local_instant(announced));
                }
            }
        }
    }
}

fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// The dedicated claiming connection, with the claim hold bounding its transactions and the
/// fire path's statements prepared.
async fn open_claim_session(settings: &Settings) -> Result<ClaimSession, clockworks::db::DbError> {
    let client = clockworks::db::connect(&settings.database_url).await?;
    firing::limit_claim_hold(&client, settings.claim_hold).await?;
    let statements = firing::Statements::prepare(&client).await?;
    Ok(ClaimSession { client, statements })
}

/// One claim transaction: claim, set aside what cannot fire, publish with confirms, record,
/// commit. Returns how many timers it claimed.
async fn fire_batch(
    session: &mut ClaimSession,
    publisher: &Publisher,
    clock: &Clock,
    settings: &Settings,
) -> Result<usize, BatchError> {
    let statements = &session.statements;
    let transaction = session.client.transaction().await?;

    // The transaction's clock is asked for in the same round trip as the claim: both
    // statements are sent before either answer is awaited.
    let claim_started = Instant::now();
    let (claimed, now) = tokio::try_join!(
        firing::claim_due(&transaction, statements, settings.batch_size),
        firing::transaction_now(&transaction),
    )?;
    histogram!(CLAIM_DURATION).record(claim_started.elapsed().as_secs_f64());
    if claimed.is_empty() {
        transaction.commit().await?;
        return Ok(0);
    }
    let claimed_count = claimed.len();
    histogram!(CLAIM_BATCH_SIZE).record(claimed_count as f64);

    let fired_at = to_stored_precision(clock.database_now().max(now));
    let (fires, set_aside) = build_fires(claimed, now, fired_at);
    if !set_aside.is_empty() {
        firing::set_aside(&transaction, &set_aside).await?;
    }

    // Fires too late for their timer's expire_after are recorded and not published.
    let (expired, fires): (Vec<Fire>, Vec<Fire>) = fires.into_iter().partition(|fire| fire.expired);
    if !expired.is_empty() {
        let records: Vec<_> = expired.iter().map(|fire| fire.record(fired_at)).collect();
        firing::mark_expired(&transaction, statements, &records).await?;
    }

    let confirmed_at = if fires.is_empty() {
        fired_at
    } else {
        match publish_and_record(
            &transaction,
            statements,
            publisher,
            &fires,
            fired_at,
            clock,
            settings,
        )
        .await
        {
            Ok(confirmed_at) => confirmed_at,
            Err(err) => {
                // Rolling back unlocks the rows as they were: due again, for any worker.
                let _ = transaction.rollback().await;
                return Err(err);
            }
        }
    };
    transaction.commit().await?;

    record_outcomes(&fires, &set_aside, confirmed_at);
    record_expired(&expired, fired_at);
    tracing::debug!(
        batch.claimed = claimed_count,
        batch.fired = fires.len(),
        batch.expired = expired.len(),
        batch.set_aside = set_aside.len(),
        "fired a batch"
    );
    Ok(claimed_count)
}

/// Publishes the fires and, once every one is confirmed, records them in the claiming
/// transaction. Returns when the confirms arrived, by the database clock.
async fn publish_and_record(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &firing::Statements,
    publisher: &Publisher,
    fires: &[Fire],
    fired_at: Timestamp,
    clock: &Clock,
    settings: &Settings,
) -> Result<Timestamp, BatchError> {
    let publish_started = Instant::now();
    if let Err(err) = publisher.publish(fires, settings.confirm_timeout).await {
        counter!(FIRES_TOTAL, "outcome" => "unconfirmed").increment(fires.len() as u64);
        return Err(err.into());
    }
    histogram!(PUBLISH_CONFIRM).record(publish_started.elapsed().as_secs_f64());
    let confirmed_at = clock.database_now().max(fired_at);

    let records: Vec<_> = fires.iter().map(|fire| fire.record(fired_at)).collect();
    firing::mark_fired(transaction, statements, &records).await?;
    Ok(confirmed_at)
}

/// PostgreSQL keeps microseconds; the message and the row must show the same instant.
fn to_stored_precision(instant: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(instant.as_microsecond()).unwrap_or(instant)
}

fn build_fires(
    claimed: Vec<ClaimedTimer>,
    now: Timestamp,
    fired_at: Timestamp,
) -> (Vec<Fire>, Vec<SetAside>) {
    let mut fires = Vec::with_capacity(claimed.len());
    let mut set_aside = Vec::new();
    for timer in claimed {
        match Fire::build(timer, now, fired_at) {
            Ok(fire) => fires.push(fire),
            Err(aside) => set_aside.push(aside),
        }
    }
    (fires, set_aside)
}

fn record_outcomes(fires: &[Fire], set_aside: &[SetAside], confirmed_at: Timestamp) {
    counter!(FIRES_TOTAL, "outcome" => "delivered").increment(fires.len() as u64);
    if !set_aside.is_empty() {
        counter!(FIRES_TOTAL, "outcome" => "failed").increment(set_aside.len() as u64);
    }
    let lateness = histogram!(FIRE_LATENESS);
    for fire in fires {
        lateness.record(
            confirmed_at
                .duration_since(fire.due_at)
                .as_secs_f64()
                .max(0.0),
        );
    }
}

fn record_expired(expired: &[Fire], decided_at: Timestamp) {
    if expired.is_empty() {
        return;
    }
    counter!(FIRES_TOTAL, "outcome" => "expired").increment(expired.len() as u64);
    for fire in expired {
        tracing::debug!(
            timer.uid = %fire.uid,
            fire.seq = fire.fire_seq,
            fire.due_at = %fire.due_at,
            lateness_ms = decided_at.duration_since(fire.due_at).as_millis(),
            "fire expired; not published"
        );
    }
}

/// Gives every metric of the fire path its help text.
pub fn describe_metrics() {
    describe_counter!(
        FIRES_TOTAL,
        "Fires by outcome: delivered (confirmed and recorded), expired (later than the \
         timer's expire_after; recorded, not published), failed (timer set aside), \
         unconfirmed (rolled back, to be fired again)"
    );
    describe_histogram!(
        FIRE_LATENESS,
        Unit::Seconds,
        "Time from a fire's due instant to the broker's confirm, by the database clock"
    );
    describe_histogram!(CLAIM_BATCH_SIZE, "Timers claimed by one non-empty claim");
    describe_histogram!(CLAIM_DURATION, Unit::Seconds, "Duration of the claim query");
    describe_histogram!(
        PUBLISH_CONFIRM,
        Unit::Seconds,
        "Time to publish a batch and receive every confirm"
    );
    describe_gauge!(BROKER_CONNECTED, "1 while the broker is connected");
    describe_gauge!(
        DATABASE_CONNECTED,
        "1 while the claiming database connection is open"
    );
}
