//! The `timers` table as the api uses it: create a timer, read one, delete one. Every query
//! is scoped to one namespace, so a key never reaches another namespace's timers. The
//! worker's fire path lives in `firing.rs`.

use jiff::Timestamp;
use serde_json::json;
use thiserror::Error;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::timer::{Timer, TimerDefinition, TimerState};

/// How many times a create tries again when the row that blocked its insert vanished (was
/// deleted) before it could be read. Two concurrent attempts already settle it.
const MAX_CREATE_ATTEMPTS: usize = 3;

/// The columns of a timer, in the order [`timer_from_row`] reads them.
macro_rules! timer_columns {
    () => {
        "namespace, id, uid, group_name, schedule, routing_key, payload, headers, state,
         next_fire_at, fire_count, last_fired_at, failure_reason, version, created_at,
         updated_at"
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
pub async fn create(
    client: &impl GenericClient,
    namespace: &str,
    id: &str,
    definition: &TimerDefinition,
) -> Result<Created, StoreError> {
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let now: Timestamp = client.query_one("select now()", &[]).await?.try_get(0)?;

        if let Some(timer) = insert(client, namespace, id, definition, now).await? {
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

async fn insert(
    client: &impl GenericClient,
    namespace: &str,
    id: &str,
    definition: &TimerDefinition,
    now: Timestamp,
) -> Result<Option<Timer>, StoreError> {
    let next_fire_at = definition.schedule.first_fire(now);
    let state = match next_fire_at {
        Some(_) => TimerState::Scheduled,
        None => TimerState::Completed,
    };
    let row = client
        .query_opt(
            concat!(
                "insert into timers (namespace, id, uid, group_name, schedule, routing_key,
                                     payload, headers, state, next_fire_at, created_at,
                                     updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                 on conflict (namespace, id) do nothing
                 returning ",
                timer_columns!()
            ),
            &[
                &namespace,
                &id,
                &Uuid::now_v7(),
                &definition.group,
                &definition.schedule.to_json(),
                &definition.routing_key,
                &definition.payload,
                &json!(definition.headers),
                &state.as_str(),
                &next_fire_at,
                &now,
            ],
        )
        .await?;
    row.as_ref().map(timer_from_row).transpose()
}

/// The timer `id` of `namespace`, if there is one.
pub async fn get(
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
                   and id = $2"
            ),
            &[&namespace, &id],
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

/// Reads a row selected with the timer columns, in their order.
fn timer_from_row(row: &Row) -> Result<Timer, StoreError> {
    let id: String = row.try_get(1)?;
    let state: String = row.try_get(8)?;
    let state = state.parse().map_err(|detail| StoreError::Unreadable {
        id: id.clone(),
        detail,
    })?;
    Ok(Timer {
        namespace: row.try_get(0)?,
        id,
        uid: row.try_get(2)?,
        group: row.try_get(3)?,
        schedule: row.try_get(4)?,
        routing_key: row.try_get(5)?,
        payload: row.try_get(6)?,
        headers: row.try_get(7)?,
        state,
        next_fire_at: row.try_get(9)?,
        fire_count: row.try_get(10)?,
        last_fired_at: row.try_get(11)?,
        failure_reason: row.try_get(12)?,
        version: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
    })
}
