//! When to wake up and claim: announcements of due instants from PostgreSQL (`LISTEN
//! clockworks_due` on a connection of its own, reconnected when it drops), and the measured
//! offset between the database clock and this machine's clock, so that a worker whose clock is
//! skewed still sleeps until the right instant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::backoff::Backoff;

/// The channel the schema's trigger notifies with the earliest `next_fire_at` (epoch ms) of
/// the timers a statement wrote.
const DUE_CHANNEL_LISTEN: &str = "listen clockworks_due";
/// How often the listening connection proves it is alive; a silent network failure would
/// otherwise leave it waiting for notifications that never come.
const LISTEN_PING_INTERVAL: Duration = Duration::from_secs(10);
const LISTEN_PING_TIMEOUT: Duration = Duration::from_secs(5);
const LISTEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(100);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);
/// A clock sample whose round trip took at most this long is precise enough to replace any
/// earlier one.
const GOOD_CLOCK_ROUND_TRIP: SignedDuration = SignedDuration::from_millis(5);
/// A sample older than this is replaced by the next one however imprecise, so that clock
/// drift is followed.
const MAX_CLOCK_SAMPLE_AGE: SignedDuration = SignedDuration::from_secs(60);

/// The database clock as seen from here: database time minus local time, measured from
/// queries that return the database's clock, assuming the answer was taken halfway through
/// the round trip. Of the samples, the most precise recent one is kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: SignedDuration,
    sample: Option<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    round_trip: SignedDuration,
    taken_at: Timestamp,
}

impl Clock {
    /// Takes a sample: a query sent at local `sent_at` answered `database_now`, received at
    /// local `received_at`.
    pub fn observe(&mut self, sent_at: Timestamp, database_now: Timestamp, received_at: Timestamp) {
        let round_trip = received_at.duration_since(sent_at);
        if let Some(kept) = self.sample {
            let precise_enough = round_trip <= kept.round_trip.max(GOOD_CLOCK_ROUND_TRIP);
            let kept_is_stale = received_at.duration_since(kept.taken_at) > MAX_CLOCK_SAMPLE_AGE;
            if !precise_enough && !kept_is_stale {
                return;
            }
        }

        let midpoint = sent_at.checked_add(round_trip / 2).unwrap_or(received_at);
        self.offset = database_now.duration_since(midpoint);
        self.sample = Some(Sample {
            round_trip,
            taken_at: received_at,
        });
    }

    /// The database clock's present reading, estimated from the local clock.
    pub fn database_now(&self) -> Timestamp {
        let now = Timestamp::now();
        now.checked_add(self.offset).unwrap_or(now)
    }

    /// The local instant at which the database clock reads `instant`; now if it already has.
    pub fn local_instant(&self, instant: Timestamp) -> Instant {
        let ahead = instant.duration_since(self.database_now());
        if ahead.is_positive() {
            Instant::now() + ahead.unsigned_abs()
        } else {
            Instant::now()
        }
    }
}

/// The earliest due instant announced since the claim loop last looked, shared between the
/// listener (which announces) and the claim loop (which takes). A burst of announcements
/// collapses into its earliest instant.
#[derive(Debug, Clone, Default)]
pub struct DueSignal(Arc<DueState>);

#[derive(Debug, Default)]
struct DueState {
    earliest: Mutex<Option<Timestamp>>,
    notify: Notify,
}

impl DueSignal {
    /// Announces that a timer is due at `instant` (database time).
    pub fn announce(&self, instant: Timestamp) {
        {
            let mut earliest = self.lock();
            *earliest = Some(earliest.map_or(instant, |known| known.min(instant)));
        }
        self.0.notify.notify_one();
    }

    /// Announces that anything may be due: notifications may have been missed.
    pub fn announce_anything(&self) {
        self.announce(Timestamp::MIN);
    }

    /// Takes the earliest instant announced so far, if any.
    pub fn take(&self) -> Option<Timestamp> {
        self.lock().take()
    }

    /// Waits for an announcement and takes the earliest instant announced.
    pub async fn announced(&self) -> Timestamp {
        loop {
            if let Some(instant) = self.take() {
                return instant;
            }
            self.0.notify.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Timestamp>> {
        self.0
            .earliest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps a connection listening for due announcements for as long as the process runs,
/// reconnecting with backoff. After every (re)connect it announces that anything may be due,
/// because notifications sent while it was away are lost.
pub fn spawn_listener(database_url: String, signal: DueSignal) {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(LISTEN_RETRY_FIRST, LISTEN_RETRY_MAX);
        loop {
            match listen(&database_url, &signal, &mut backoff).await {
                Ok(()) => tracing::warn!("the listening connection closed; reconnecting"),
                Err(err) => {
                    tracing::warn!(cause = %err, "listening for due timers failed; reconnecting");
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    });
}

/// Listens until the connection fails.
async fn listen(
    database_url: &str,
    signal: &DueSignal,
    backoff: &mut Backoff,
) -> Result<(), tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = database_url.parse()?;
    config.connect_timeout(LISTEN_CONNECT_TIMEOUT);
    config.application_name("clockworks-worker-listen");
    let (client, mut connection) = config.connect(NoTls).await?;

    // The connection delivers notifications only to whoever polls it, so this task polls it
    // and turns each notification into an announcement.
    let announcer = signal.clone();
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let mut receiving = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message? {
                match due_instant(notification.payload()) {
                    Some(instant) => announcer.announce(instant),
                    None => announcer.announce_anything(),
                }
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });

    let outcome = keep_listening(&client, signal, backoff, &mut receiving).await;
    receiving.abort();
    outcome
}

async fn keep_listening(
    client: &tokio_postgres::Client,
    signal: &DueSignal,
    backoff: &mut Backoff,
    receiving: &mut tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(DUE_CHANNEL_LISTEN).await?;
    backoff.reset();
    signal.announce_anything();
    tracing::debug!("listening for due timers");

    let mut ping = tokio::time::interval(LISTEN_PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            ended = &mut *receiving => {
                return match ended {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                };
            }
            _ = ping.tick() => {
                if !answers(client).await? {
                    tracing::warn!("the listening connection stopped answering");
                    return Ok(());
                }
            }
        }
    }
}

/// Whether the connection answers a trivial query in time.
async fn answers(client: &tokio_postgres::Client) -> Result<bool, tokio_postgres::Error> {
    match tokio::time::timeout(LISTEN_PING_TIMEOUT, client.simple_query("select 1")).await {
        Ok(answer) => answer.map(|_| true),
        Err(_) => Ok(false),
    }
}

/// The instant a notification's payload (milliseconds since the Unix epoch) names.
fn due_instant(payload: &str) -> Option<Timestamp> {
    let millis: i64 = payload.trim().parse().ok()?;
    Timestamp::from_millisecond(millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_offset_is_measured_from_the_middle_of_the_round_trip() {
        let mut clock = Clock::default();
        clock.observe(
            at("2027-01-01T00:00:00Z"),
            at("2027-01-01T00:00:03.001Z"),
            at("2027-01-01T00:00:00.002Z"),
        );
        assert_eq!(clock.offset, SignedDuration::from_secs(3));
    }

    #[test]
    fn a_skewed_clock_still_wakes_when_the_database_says_it_is_due() {
        // This machine's clock runs 3 s behind the database's.
        let mut clock = Clock::default();
        let local = Timestamp::now();
        clock.observe(local, local + SignedDuration::from_secs(3), local);

        let due = clock.database_now() + SignedDuration::from_secs(1);
        let wait = clock.local_instant(due) - Instant::now();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(wait >= Duration::from_millis(900), "{wait:?}");

        let past = clock.database_now() - SignedDuration::from_millis(1);
        assert!(clock.local_instant(past) <= Instant::now());
    }

    #[test]
    fn a_slow_sample_replaces_a_precise_one_only_once_that_is_stale() {
        let mut clock = Clock::default();
        let local = at("2027-01-01T00:00:00Z");
        let secs = SignedDuration::from_secs;
        clock.observe(local, local + secs(3), local);

        clock.observe(local + secs(10), local + secs(19), local + secs(11));
        assert_eq!(clock.offset, secs(3));

        clock.observe(local + secs(100), local + secs(109), local + secs(101));
        assert_eq!(clock.offset, SignedDuration::from_millis(8_500));
    }

    #[test]
    fn a_more_precise_sample_replaces_a_slow_first_one() {
        let mut clock = Clock::default();
        let local = at("2027-01-01T00:00:00Z");
        let millis = SignedDuration::from_millis;
        clock.observe(local, local + millis(3_000), local + millis(400));
        assert_eq!(clock.offset, millis(2_800));

        clock.observe(
            local + millis(500),
            local + millis(3_500),
            local + millis(500),
        );
        assert_eq!(clock.offset, millis(3_000));
    }

    #[test]
    fn a_burst_of_announcements_collapses_into_the_earliest() {
        let signal = DueSignal::default();
        signal.announce(at("2027-01-01T00:00:05Z"));
        signal.announce(at("2027-01-01T00:00:01Z"));
        signal.announce(at("2027-01-01T00:00:03Z"));
        assert_eq!(signal.take(), Some(at("2027-01-01T00:00:01Z")));
        assert_eq!(signal.take(), None);
    }

    #[test]
    fn notification_payloads_are_epoch_milliseconds() {
        assert_eq!(
            due_instant("1798794000123"),
            Some(at("2027-01-01T09:00:00.123Z"))
        );
        assert_eq!(due_instant("soon"), None);
    }
}
