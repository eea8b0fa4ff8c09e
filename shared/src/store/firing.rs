//! The fire path's SQL on the `timers` and `fires` tables: the claiming session's limits,
//! claiming due timers, marking them fired or expired (with their fire history), setting aside
//! those that cannot be fired, and the earliest instant at which a timer comes due.
//!
//! A triggered timer (`/trigger`, see `timers.rs`) is due at the trigger instant and keeps its
//! own state and slot in `deferred_state` and `deferred_next_fire_at`; recording its fire
//! puts them back in place, so the trigger leaves the schedule where it was.
//!
//! A claim holds row locks (`for update skip locked`) for the length of one transaction, so
//! any number of workers divide the due timers between them without a leader.
//!
//! The statements every batch runs are prepared once per claiming connection
//! ([`Statements`]): parsing and planning them again for every batch would cost a round trip
//! and more server time than a small batch's own work, and the time from a timer's due
//! instant to its publication is mostly such fixed costs.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

/// A due timer, locked by the claiming transaction until it commits or rolls back.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTimer {
    pub uid: Uuid,
    pub namespace: String,
    pub id: String,
    pub group: Option<String>,
    /// The schedule as stored; it may fail to read back if it was written behind the api.
    pub schedule: Value,
    pub routing_key: String,
    pub payload: Value,
    pub headers: Value,
    /// The instant this fire was due (the row's `next_fire_at`).
    pub due_at: Timestamp,
    /// Fires so far; this fire is number `fire_count + 1`.
    pub fire_count: i64,
    /// Whether this fire was requested out of schedule (`/trigger`). The timer then goes
    /// back to its own state, waiting for `deferred_next_fire_at` again.
    pub triggered: bool,
    /// The slot a triggered timer was waiting for when it was triggered.
    pub deferred_next_fire_at: Option<Timestamp>,
    /// A fire later than `due_at` plus this many milliseconds has expired: it is recorded,
    /// not published.
    pub expire_after_ms: Option<i64>,
}

/// One confirmed fire, to be recorded in the claiming transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredTimer {
    pub uid: Uuid,
    pub fire_seq: i64,
    pub scheduled_at: Timestamp,
    pub fired_at: Timestamp,
    /// The next fire, or `None` when the timer has nothing left to fire and completes. A
    /// triggered timer goes back to its own state (paused, say) whatever this is.
    pub next_fire_at: Option<Timestamp>,
}

/// What became of a fire, as its `fires` row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Published and confirmed by the broker.
    Delivered,
    /// Too late by the timer's `expire_after`; not published.
    Expired,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Expired => "expired",
        }
    }
}

/// A claimed timer that cannot be fired, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    pub uid: Uuid,
    pub reason: String,
}

/// What the database says about the next due timer, and its clock when it said it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DueProbe {
    /// The earliest `next_fire_at` of a scheduled timer, locked or not.
    pub earliest_due: Option<Timestamp>,
    /// The database clock (`clock_timestamp()`) while answering.
    pub database_now: Timestamp,
}

/// Bounds how long this session may sit in a transaction or run one statement. A worker that
/// freezes while holding claimed timers has its session ended by PostgreSQL after `hold`,
/// which releases the row locks so that another worker fires those timers.
pub async fn limit_claim_hold(
    client: &impl GenericClient,
    hold: Duration,
) -> Result<(), tokio_postgres::Error> {
    let millis = hold.as_millis().to_string();
    client
        .execute(
            "select set_config('idle_in_transaction_session_timeout', $1, false),
                    set_config('statement_timeout', $1, false)",
            &[&millis],
        )
        .await?;
    Ok(())
}

/// The claim of [`claim_due`], with the limit as its parameter.
const CLAIM: &str = "select uid, namespace, id, group_name, schedule, routing_key, payload,
                            headers, next_fire_at, fire_count, deferred_state is not null,
                            deferred_next_fire_at, expire_after_ms
                     from timers
                     where state = 'scheduled'
                       and next_fire_at <= now()
                     order by next_fire_at
                     limit $1
                     for update skip locked";

/// Advances fired timers and records their fires; see [`record`].
const RECORD: &str = "with fired (uid, fire_seq, scheduled_at, fired_at, next_fire_at) as (
                          select *
                          from unnest($1::uuid[], $2::bigint[], $3::timestamptz[],
                                      $4::timestamptz[], $5::timestamptz[])
                      ),
                      advanced as (
                          update timers
                          set fire_count = timers.fire_count + 1,
                              last_fired_at = case when $6::text = 'delivered'
                                                   then fired.fired_at
                                                   else timers.last_fired_at
                                              end,
                              next_fire_at = fired.next_fire_at,
                              state = case when timers.deferred_state is not null
                                           then timers.deferred_state
                                           when fired.next_fire_at is null
                                           then 'completed'
                                           else 'scheduled'
                                      end,
                              deferred_state = null,
                              deferred_next_fire_at = null,
                              updated_at = now()
                          from fired
                          where timers.uid = fired.uid
                          returning timers.uid, timers.namespace, timers.id
                      )
                      insert into fires (timer_uid, fire_seq, namespace, timer_id,
                                         scheduled_at, fired_at, outcome)
                      select fired.uid, fired.fire_seq, advanced.namespace, advanced.id,
                             fired.scheduled_at, fired.fired_at, $6::text
                      from fired
                      join advanced on advanced.uid = fired.uid
                      on conflict (timer_uid, fire_seq) do nothing";

/// The earliest `next_fire_at` of a scheduled timer and the database clock.
const EARLIEST_DUE: &str = "select min(next_fire_at), clock_timestamp()
                            from timers
                            where state = 'scheduled'";

/// The statements of every batch, prepared on one connection and usable only on it (and its
/// transactions).
#[derive(Debug, Clone)]
pub struct Statements {
    claim: Statement,
    record: Statement,
    earliest_due: Statement,
}

impl Statements {
    /// Prepares the fire path's statements on `client`.
    pub async fn prepare(client: &impl GenericClient) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            claim: client.prepare_typed(CLAIM, &[Type::INT8]).await?,
            record: client.prepare(RECORD).await?,
            earliest_due: client.prepare(EARLIEST_DUE).await?,
        })
    }
}

/// Locks up to `limit` due timers, earliest first, skipping those other workers hold. "Due"
/// is decided by the database clock at the start of the transaction.
pub async fn claim_due(
    client: &impl GenericClient,
    statements: &Statements,
    limit: i64,
) -> Result<Vec<ClaimedTimer>, tokio_postgres::Error> {
    let rows = client.query(&statements.claim, &[&limit]).await?;
    Ok(rows
        .iter()
        .map(|row| ClaimedTimer {
            uid: row.get(0),
            namespace: row.get(1),
            id: row.get(2),
            group: row.get(3),
            schedule: row.get(4),
            routing_key: row.get(5),
            payload: row.get(6),
            headers: row.get(7),
            due_at: row.get(8),
            fire_count: row.get(9),
            triggered: row.get(10),
            deferred_next_fire_at: row.get(11),
            expire_after_ms: row.get(12),
        })
        .collect())
}

/// The database's `now()`: inside a transaction, the instant the transaction started, which
/// is the "now" its claim compared due instants with.
pub async fn transaction_now(
    client: &impl GenericClient,
) -> Result<Timestamp, tokio_postgres::Error> {
    let row = client.query_typed_one("select now()", &[]).await?;
    Ok(row.get(0))
}

/// Advances every fired timer to its next fire (or completes it) and records one `fires` row
/// per fire, in one statement. Returns the number of fire rows written. A fire already
/// recorded is kept as it is rather than failing the whole batch over one row.
pub async fn mark_fired(
    client: &impl GenericClient,
    statements: &Statements,
    fired: &[FiredTimer],
) -> Result<u64, tokio_postgres::Error> {
    record(client, statements, fired, Outcome::Delivered).await
}

/// Like [`mark_fired`], for fires that expired and were not published: each still takes its
/// fire sequence number and counts in `fire_count`, but not as `last_fired_at`.
pub async fn mark_expired(
    client: &impl GenericClient,
    statements: &Statements,
    expired: &[FiredTimer],
) -> Result<u64, tokio_postgres::Error> {
    record(client, statements, expired, Outcome::Expired).await
}

/// Advances every timer of `fired` and records its fire with `outcome`, in one statement
/// ([`RECORD`]).
async fn record(
    client: &impl GenericClient,
    statements: &Statements,
    fired: &[FiredTimer],
    outcome: Outcome,
) -> Result<u64, tokio_postgres::Error> {
    let uids: Vec<Uuid> = fired.iter().map(|fire| fire.uid).collect();
    let fire_seqs: Vec<i64> = fired.iter().map(|fire| fire.fire_seq).collect();
    let scheduled: Vec<Timestamp> = fired.iter().map(|fire| fire.scheduled_at).collect();
    let fired_at: Vec<Timestamp> = fired.iter().map(|fire| fire.fired_at).collect();
    let next: Vec<Option<Timestamp>> = fired.iter().map(|fire| fire.next_fire_at).collect();
    client
        .execute(
            &statements.record,
            &[
                &uids,
                &fire_seqs,
                &scheduled,
                &fired_at,
                &next,
                &outcome.as_str(),
            ],
        )
        .await
}

/// Moves timers that cannot be fired to the `failed` state with their reasons, so that they
/// stop coming due and never block the others.
pub async fn set_aside(
    client: &impl GenericClient,
    timers: &[SetAside],
) -> Result<u64, tokio_postgres::Error> {
    let uids: Vec<Uuid> = timers.iter().map(|timer| timer.uid).collect();
    let reasons: Vec<&str> = timers.iter().map(|timer| timer.reason.as_str()).collect();
    client
        .execute(
            "update timers
             set state = 'failed',
                 failure_reason = set_aside.reason,
                 next_fire_at = null,
                 deferred_state = null,
                 deferred_next_fire_at = null,
                 updated_at = now()
             from unnest($1::uuid[], $2::text[]) as set_aside (uid, reason)
             where timers.uid = set_aside.uid",
            &[&uids, &reasons],
        )
        .await
}

/// The earliest instant a scheduled timer is due, including timers other workers hold, and
/// the database clock at the time of asking.
pub async fn earliest_due(
    client: &impl GenericClient,
    statements: &Statements,
) -> Result<DueProbe, tokio_postgres::Error> {
    let row = client.query_one(&statements.earliest_due, &[]).await?;
    Ok(DueProbe {
        earliest_due: row.get(0),
        database_now: row.get(1),
    })
}
