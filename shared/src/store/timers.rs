//! The `timers` table as the api uses it: create, replace, read, list and delete timers, and
//! change their state ([`crate::lifecycle`]). Every query is scoped to one namespace, so a
//! key never reaches another namespace's timers. The worker's fire path lives in `firing.rs`.
//!
//! A pending trigger is stored so that the claim query needs nothing new: the row is
//! scheduled at the trigger instant, and `deferred_state` and `deferred_next_fire_at` keep
//! the timer's own state and slot. This module alone maps between that row and the
//! [`Timer`] the rest of the code sees, whose state and slot are always the timer's own.

use jiff::Timestamp;
use serde_json::json;
use thiserror::Error;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row, Statement};
use uuid::Uuid;

use crate::duration::Millis;
use crate::lifecycle::{self, Action, LifecycleError};
use crate::schedule::Schedule;
use crate::timer::{Timer, TimerDefinition, TimerState};

/// How many times a create tries again when the row that blocked its insert vanished (was
/// deleted) before it could be read. Two concurrent attempts already settle it.
const MAX_CREATE_ATTEMPTS: usize = 3;

/// The columns of a timer, in the order [`timer_from_row`] reads them.
macro_rules! timer_columns {
    () => {
        "namespace, id, uid, group_name, schedule, routing_key, payload, headers, state,
         next_fire_at, fire_count, last_fired_at, failure_reason, version, created_at,
         updated_at, expire_after_ms, deferred_state, deferred_next_fire_at"
    };
}

/// Why a timer could not be stored or read.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The query failed or the connection broke.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// The row holds a value this version cannot read; the schema's checks should prevent it.
    #[error("stored timer {id:?} cannot be read: {detail}")]
    Unreadable { id: String, detail: String },
    /// Each insert met a row with the same id that was gone when read back.
    #[error("timer {id:?} was created and deleted concurrently {MAX_CREATE_ATTEMPTS} times")]
    Contended { id: String },
}

/// What a create found: a new timer, or the timer that already had this id.
#[derive(Debug)]
pub enum Created {
    /// The id was free; this is the new timer.
    Inserted(Timer),
    /// The id was taken; this is the timer holding it, unchanged.
    Existing(Timer),
}

/// Creates the timer `id` in `namespace` unless that id is taken there, in which case the
/// timer holding it is returned untouched. The first fire is computed from the database's
/// clock, which is also the timer's `created_at`. Safe against concurrent creates of the same
/// id: exactly one inserts, the others see its timer.
///
/// Takes a pooled connection, which keeps the insert prepared from one request to the next.
pub async fn create(
    client: &deadpool_postgres::Client,
    namespace: &str,
    id: &str,
    definition: &TimerDefinition,
) -> Result<Created, StoreError> {
    let statement = client.prepare_typed_cached(INSERT, &INSERT_TYPES).await?;
    let client: &tokio_postgres::Client = client;
    for _ in 0..MAX_CREATE_ATTEMPTS {
        // An `at` or `after` schedule's first fire is written by the insert itself, from the
        // clock it reads; any other schedule needs the database's clock read first.
        let (defined_at, first_fire) = match FirstFire::without_clock(&definition.schedule) {
            Some(first_fire) => (None, first_fire),
            None => {
                let now = transaction_now(client).await?;
                (
                    Some(now),
                    FirstFire::Known(definition.schedule.first_fire(now)),
                )
            }
        };

        let inserted = insert(
            client, &statement, namespace, id, definition, defined_at, first_fire,
        );
        if let Some(timer) = inserted.await? {
            return Ok(Created::Inserted(timer));
        }

        // `on conflict do nothing` waited for the conflicting insert to commit, so a new
        // statement sees that row, unless it was deleted in between.
        if let Some(timer) = get(client, namespace, id).await? {
            return Ok(Created::Existing(timer));
        }
    }
    Err(StoreError::Contended { id: id.to_owned() })
}

/// What a `PUT` asks of the timer it would replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Create or replace, whatever is there.
    None,
    /// Replace only, whatever the version (`If-Match: *`).
    Exists,
    /// Replace only a timer at one of these versions (`If-Match: "3"`).
    VersionIn(Vec<i64>),
    /// Create only (`If-None-Match: *`).
    Absent,
}

impl Precondition {
    /// Whether the precondition holds for `current`, the timer with the id, if any.
    fn holds(&self, current: Option<&Timer>) -> bool {
        match (self, current) {
            (Precondition::None, _) => true,
            (Precondition::Exists, current) => current.is_some(),
            (Precondition::VersionIn(versions), Some(timer)) => versions.contains(&timer.version),
            (Precondition::VersionIn(_), None) => false,
            (Precondition::Absent, current) => current.is_none(),
        }
    }
}

/// What a `PUT` did.
#[derive(Debug)]
pub enum Put {
    /// There was no timer with the id; this is the new one.
    Created(Timer),
    /// This is the timer with its new definition and version.
    Replaced(Timer),
    /// The precondition failed; nothing was written. The version of the timer holding the
    /// id, if there is one.
    PreconditionFailed { current_version: Option<i64> },
}

/// Creates the timer `id` with `definition`, or replaces the definition of the one that
/// exists ([`lifecycle::replace`]), if `precondition` holds. The row is locked while it is
/// checked and written, so concurrent replaces take turns and each bumps the version.
pub async fn put(
    client: &mut impl GenericClient,
    namespace: &str,
    id: &str,
    definition: &TimerDefinition,
    precondition: &Precondition,
) -> Result<Put, StoreError> {
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let transaction = client.transaction().await?;
        let now = transaction_now(&transaction).await?;
        let current = lock(&transaction, namespace, id).await?;

        if !precondition.holds(current.as_ref()) {
            let current_version = current.map(|timer| timer.version);
            return Ok(Put::PreconditionFailed { current_version });
        }

        if let Some(current) = current {
            let replaced = lifecycle::replace(&current, definition, now);
            let stored = write(&transaction, &replaced, now).await?;
            transaction.commit().await?;
            return Ok(Put::Replaced(stored));
        }

        // A concurrent create may take the id first; the next attempt then replaces it.
        let statement = transaction.prepare_typed(INSERT, &INSERT_TYPES).await?;
        let first_fire = FirstFire::Known(definition.schedule.first_fire(now));
        let inserted = insert(
            &transaction,
            &statement,
            namespace,
            id,
            definition,
            Some(now),
            first_fire,
        );
        if let Some(created) = inserted.await? {
            transaction.commit().await?;
            return Ok(Put::Created(created));
        }
    }
    Err(StoreError::Contended { id: id.to_owned() })
}

/// What a pause, resume or trigger did.
#[derive(Debug)]
pub enum Transition {
    /// The timer as it is now stored, with a new version.
    Changed(Timer),
    /// The timer was already where the action leads; it is unchanged.
    Unchanged(Timer),
    /// The timer's state does not allow the action; it is unchanged.
    NotAllowed(Timer),
}

/// Applies `action` to the timer `id` of `namespace` under a row lock, if there is a timer.
pub async fn transition(
    client: &mut impl GenericClient,
    namespace: &str,
    id: &str,
    action: Action,
) -> Result<Option<Transition>, StoreError> {
    let transaction = client.transaction().await?;
    let now = transaction_now(&transaction).await?;
    let Some(current) = lock(&transaction, namespace, id).await? else {
        return Ok(None);
    };

    let transition = match lifecycle::apply(&current, action, now) {
        Ok(Some(changed)) => Transition::Changed(write(&transaction, &changed, now).await?),
        Ok(None) => Transition::Unchanged(current),
        Err(LifecycleError::NotAllowed { .. }) => Transition::NotAllowed(current),
        Err(LifecycleError::UnreadableSchedule(detail)) => {
            return Err(StoreError::Unreadable {
                id: current.id,
                detail,
            });
        }
    };
    transaction.commit().await?;
    Ok(Some(transition))
}

/// Which timers a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only timers of this group.
    pub group: Option<String>,
    /// Only timers in this (own) state.
    pub state: Option<TimerState>,
    /// Only timers whose id sorts after this one: where the previous page ended.
    pub after_id: Option<String>,
}

/// Up to `limit` timers of `namespace` that pass `filter`, in id order. Each page starts
/// after the last id of the one before, so timers created or deleted between pages never
/// shift the others: none that exists throughout is skipped or listed twice.
pub async fn list(
    client: &impl GenericClient,
    namespace: &str,
    filter: &ListFilter,
    limit: i64,
) -> Result<Vec<Timer>, StoreError> {
    let state = filter.state.map(TimerState::as_str);
    let rows = client
        .query(
            concat!(
                "select ",
                timer_columns!(),
                " from timers
                 where namespace = $1
                   and ($2::text is null or group_name = $2)
                   and ($3::text is null or coalesce(deferred_state, state) = $3)
                   and ($4::text is null or id > $4)
                 order by id
                 limit $5"
            ),
            &[&namespace, &filter.group, &state, &filter.after_id, &limit],
        )
        .await?;
    rows.iter().map(timer_from_row).collect()
}

/// When a new timer first fires, relative to the instant it is created at.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FirstFire {
    /// At this instant, or never (`None`).
    Known(Option<Timestamp>),
    /// This long after the instant the timer is created at.
    After(Millis),
}

impl FirstFire {
    /// The first fire of `schedule` when it can be written without knowing the instant the
    /// timer is created at: an `at` schedule's instant, an `after` schedule's delay. Every
    /// and cron schedules count their slots from that instant.
    fn without_clock(schedule: &Schedule) -> Option<FirstFire> {
        match schedule {
            Schedule::At { at } => Some(FirstFire::Known(Some(*at))),
            Schedule::After { after } => Some(FirstFire::After(*after)),
            Schedule::Every(_) | Schedule::Cron(_) => None,
        }
    }

    fn state(self) -> TimerState {
        match self {
            FirstFire::Known(None) => TimerState::Completed,
            FirstFire::Known(Some(_)) | FirstFire::After(_) => TimerState::Scheduled,
        }
    }
}

/// Inserts a timer unless its id is taken: namespace, id, uid, group, schedule, routing key,
/// payload, headers, expire_after_ms, state, the first fire if it is known ($11), the instant
/// the timer is created at, or null for the database's `now()` ($12), and otherwise the first
/// fire's delay after that instant, in milliseconds ($13).
const INSERT: &str = concat!(
    "with clock (defined_at) as (
         select coalesce($12, now())
     )
     insert into timers (namespace, id, uid, group_name, schedule, routing_key, payload,
                         headers, expire_after_ms, state, next_fire_at, created_at,
                         updated_at)
     select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
            coalesce($11, clock.defined_at + $13 * interval '1 millisecond'),
            clock.defined_at,
            clock.defined_at
     from clock
     on conflict (namespace, id) do nothing
     returning ",
    timer_columns!()
);

/// The parameter types of [`INSERT`], in order.
const INSERT_TYPES: [Type; 13] = [
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::JSONB,
    Type::JSONB,
    Type::INT8,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT8,
];

/// Inserts the timer with `statement`, prepared from [`INSERT`], unless its id is taken;
/// created at `defined_at`, or at the database's `now()` when that is `None`.
async fn insert(
    client: &impl GenericClient,
    statement: &Statement,
    namespace: &str,
    id: &str,
    definition: &TimerDefinition,
    defined_at: Option<Timestamp>,
    first_fire: FirstFire,
) -> Result<Option<Timer>, StoreError> {
    let (known_fire, after_ms) = match first_fire {
        FirstFire::Known(instant) => (instant, None),
        FirstFire::After(after) => (None, Some(after.as_millis())),
    };
    let row = client
        .query_opt(
            statement,
            &[
                &namespace,
                &id,
                &Uuid::now_v7(),
                &definition.group,
                &definition.schedule.to_json(),
                &definition.routing_key,
                &definition.payload,
                &json!(definition.headers),
                &definition.expire_after.map(Millis::as_millis),
                &first_fire.state().as_str(),
                &known_fire,
                &defined_at,
                &after_ms,
            ],
        )
        .await?;
    row.as_ref().map(timer_from_row).transpose()
}

/// The database's `now()`: in a transaction, the instant it began.
async fn transaction_now(client: &impl GenericClient) -> Result<Timestamp, StoreError> {
    Ok(client
        .query_typed_one("select now()", &[])
        .await?
        .try_get(0)?)
}

/// The timer `id` of `namespace`, locked until the transaction ends. A worker firing it
/// holds the lock too, so a change waits for the fire to be recorded, and then sees it.
async fn lock(
    client: &impl GenericClient,
    namespace: &str,
    id: &str,
) -> Result<Option<Timer>, StoreError> {
    let row = client
        .query_opt(
            concat!(
                "select ",
                timer_columns!(),
                " from timers
                 where namespace = $1
                   and id = $2
                 for update"
            ),
            &[&namespace, &id],
        )
        .await?;
    row.as_ref().map(timer_from_row).transpose()
}

/// Stores everything a client may change about `timer` (found by its incarnation), with
/// the next version, and returns it as stored.
async fn write(
    client: &impl GenericClient,
    timer: &Timer,
    now: Timestamp,
) -> Result<Timer, StoreError> {
    let row = StoredState::of(timer);
    let written = client
        .query_one(
            concat!(
                "update timers
                 set group_name = $2,
                     schedule = $3,
                     routing_key = $4,
                     payload = $5,
                     headers = $6,
                     expire_after_ms = $7,
                     state = $8,
                     next_fire_at = $9,
                     deferred_state = $10,
                     deferred_next_fire_at = $11,
                     failure_reason = $12,
                     version = version + 1,
                     updated_at = $13
                 where uid = $1
                 returning ",
                timer_columns!()
            ),
            &[
                &timer.uid,
                &timer.group,
                &timer.schedule,
                &timer.routing_key,
                &timer.payload,
                &timer.headers,
                &timer.expire_after.map(Millis::as_millis),
                &row.state.as_str(),
                &row.next_fire_at,
                &row.deferred_state.map(TimerState::as_str),
                &row.deferred_next_fire_at,
                &timer.failure_reason,
                &now,
            ],
        )
        .await?;
    timer_from_row(&written)
}

/// The timer `id` of `namespace`, if there is one.
pub async fn get(
    client: &impl GenericClient,
    namespace: &str,
    id: &str,
) -> Result<Option<Timer>, StoreError> {
    let row = client
        .query_typed_opt(
            concat!(
                "select ",
                timer_columns!(),
                " from timers
                 where namespace = $1
                   and id = $2"
            ),
            &[(&namespace, Type::TEXT), (&id, Type::TEXT)],
        )
        .await?;
    row.as_ref().map(timer_from_row).transpose()
}

/// Deletes the timer `id` of `namespace` and returns it as it was, if there was one. A
/// worker holding the row to fire it makes the delete wait until that fire is recorded.
pub async fn delete(
    client: &impl GenericClient,
    namespace: &str,
    id: &str,
) -> Result<Option<Timer>, StoreError> {
    let row = client
        .query_opt(
            concat!(
                "delete from timers
                 where namespace = $1
                   and id = $2
                 returning ",
                timer_columns!()
            ),
            &[&namespace, &id],
        )
        .await?;
    row.as_ref().map(timer_from_row).transpose()
}

/// How a timer's own state and slot, and a pending trigger, are laid out in its row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StoredState {
    state: TimerState,
    next_fire_at: Option<Timestamp>,
    deferred_state: Option<TimerState>,
    deferred_next_fire_at: Option<Timestamp>,
}

impl StoredState {
    /// The row of `timer`: with a pending trigger, scheduled at the trigger instant, its
    /// own state and slot deferred.
    fn of(timer: &Timer) -> StoredState {
        match timer.triggered_at {
            Some(triggered_at) => StoredState {
                state: TimerState::Scheduled,
                next_fire_at: Some(triggered_at),
                deferred_state: Some(timer.state),
                deferred_next_fire_at: timer.next_fire_at,
            },
            None => StoredState {
                state: timer.state,
                next_fire_at: timer.next_fire_at,
                deferred_state: None,
                deferred_next_fire_at: None,
            },
        }
    }

    /// The timer's own state and slot, and when a pending trigger was requested.
    fn own(self) -> (TimerState, Option<Timestamp>, Option<Timestamp>) {
        match self.deferred_state {
            Some(state) => (state, self.deferred_next_fire_at, self.next_fire_at),
            None => (self.state, self.next_fire_at, None),
        }
    }
}

/// Reads a row selected with the timer columns, in their order.
fn timer_from_row(row: &Row) -> Result<Timer, StoreError> {
    let id: String = row.try_get(1)?;
    let unreadable = |detail: String| StoreError::Unreadable {
        id: id.clone(),
        detail,
    };
    let state = parse_state(row.try_get(8)?).map_err(unreadable)?;
    let deferred_state = row
        .try_get::<_, Option<&str>>(17)?
        .map(parse_state)
        .transpose()
        .map_err(unreadable)?;
    let expire_after = row
        .try_get::<_, Option<i64>>(16)?
        .map(Millis::from_millis)
        .transpose()
        .map_err(|detail| unreadable(format!("expire_after_ms {detail}")))?;
    let stored = StoredState {
        state,
        next_fire_at: row.try_get(9)?,
        deferred_state,
        deferred_next_fire_at: row.try_get(18)?,
    };
    let (state, next_fire_at, triggered_at) = stored.own();

    Ok(Timer {
        namespace: row.try_get(0)?,
        uid: row.try_get(2)?,
        group: row.try_get(3)?,
        schedule: row.try_get(4)?,
        routing_key: row.try_get(5)?,
        payload: row.try_get(6)?,
        headers: row.try_get(7)?,
        expire_after,
        state,
        next_fire_at,
        triggered_at,
        fire_count: row.try_get(10)?,
        last_fired_at: row.try_get(11)?,
        failure_reason: row.try_get(12)?,
        version: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
        id,
    })
}

fn parse_state(text: &str) -> Result<TimerState, String> {
    text.parse()
}
