//! Timers written straight into a test's database, the way the api stores them, for tests of
//! the worker that do not go through HTTP (and for rows the api would never write, such as a
//! corrupt schedule).

use anyhow::Result;
use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;

/// One `timers` row in the `scheduled` state.
#[derive(Debug, Clone)]
pub struct SeedTimer {
    pub namespace: String,
    pub id: String,
    pub uid: Uuid,
    pub group: Option<String>,
    pub schedule: Value,
    pub routing_key: String,
    pub payload: Value,
    pub headers: Value,
    pub next_fire_at: Timestamp,
}

impl SeedTimer {
    /// A one-shot timer due at `due` (`{"at": due}`), routed as `<namespace>.fired`, whose
    /// payload names it.
    pub fn at(namespace: &str, id: &str, due: Timestamp) -> SeedTimer {
        SeedTimer {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            uid: Uuid::now_v7(),
            group: None,
            schedule: json!({ "at": due.to_string() }),
            routing_key: "fired".to_owned(),
            payload: json!({ "id": id }),
            headers: json!({}),
            next_fire_at: due,
        }
    }
}

/// Inserts every timer in one statement, so the schema's trigger announces them once.
pub async fn insert(client: &tokio_postgres::Client, timers: &[SeedTimer]) -> Result<()> {
    let namespaces: Vec<&str> = timers.iter().map(|t| t.namespace.as_str()).collect();
    let ids: Vec<&str> = timers.iter().map(|t| t.id.as_str()).collect();
    let uids: Vec<Uuid> = timers.iter().map(|t| t.uid).collect();
    let groups: Vec<Option<&str>> = timers.iter().map(|t| t.group.as_deref()).collect();
    let schedules: Vec<&Value> = timers.iter().map(|t| &t.schedule).collect();
    let routing_keys: Vec<&str> = timers.iter().map(|t| t.routing_key.as_str()).collect();
    let payloads: Vec<&Value> = timers.iter().map(|t| &t.payload).collect();
    let headers: Vec<&Value> = timers.iter().map(|t| &t.headers).collect();
    let due: Vec<Timestamp> = timers.iter().map(|t| t.next_fire_at).collect();
    client
        .execute(
            "insert into timers (namespace, id, uid, group_name, schedule, routing_key, payload,
                                 headers, state, next_fire_at)
             select namespace, id, uid, group_name, schedule, routing_key, payload, headers,
                    'scheduled', next_fire_at
             from unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[], $6::text[],
                         $7::jsonb[], $8::jsonb[], $9::timestamptz[])
                  as seed (namespace, id, uid, group_name, schedule, routing_key, payload,
                           headers, next_fire_at)",
            &[
                &namespaces,
                &ids,
                &uids,
                &groups,
                &schedules,
                &routing_keys,
                &payloads,
                &headers,
                &due,
            ],
        )
        .await?;
    Ok(())
}

/// The database clock, which decides what is due.
pub async fn database_now(client: &tokio_postgres::Client) -> Result<Timestamp> {
    Ok(client.query_one("select now()", &[]).await?.get(0))
}

/// An instant `millis` milliseconds after the database's now, rounded to the millisecond so
/// that it survives a round trip through `timestamptz` and RFC 3339 unchanged.
pub async fn due_in(client: &tokio_postgres::Client, millis: i64) -> Result<Timestamp> {
    let now = database_now(client).await?;
    Ok(Timestamp::from_millisecond(now.as_millisecond() + millis)?)
}
