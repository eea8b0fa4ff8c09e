//! The `fires` table as the api reads it: the recent fire history of one timer incarnation.
//! The worker writes it (`firing.rs`) and prunes it (`retention.rs`).

use jiff::Timestamp;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// One recorded fire of a timer.
#[derive(Debug, Clone, PartialEq)]
pub struct FireRecord {
    pub fire_seq: i64,
    /// The instant the fire was due.
    pub scheduled_at: Timestamp,
    /// The instant the worker published it (or, for an expired fire, decided not to).
    pub fired_at: Timestamp,
    /// `delivered` (published and confirmed) or `expired` (too late, not published).
    pub outcome: String,
}

/// The latest `limit` fires of the timer incarnation `timer_uid`, newest first.
pub async fn recent(
    client: &impl GenericClient,
    timer_uid: Uuid,
    limit: i64,
) -> Result<Vec<FireRecord>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select fire_seq, scheduled_at, fired_at, outcome
             from fires
             where timer_uid = $1
             order by fire_seq desc
             limit $2",
            &[&timer_uid, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FireRecord {
                fire_seq: row.try_get(0)?,
                scheduled_at: row.try_get(1)?,
                fired_at: row.try_get(2)?,
                outcome: row.try_get(3)?,
            })
        })
        .collect()
}
