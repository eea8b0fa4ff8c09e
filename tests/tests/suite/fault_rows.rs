//! Rows the worker cannot fire, written behind the api's back: headers that are not an object
//! of strings, headers too large for one AMQP frame, and a routing key longer than AMQP
//! allows. Each is set aside (state `failed`) with its reason and counted as a failed fire;
//! the timers due with and after them fire as if nothing happened.

use crate::fault_support;

use std::time::Duration;

use anyhow::Result;
use clockworks_tests::Stack;
use clockworks_tests::seed::{self, SeedTimer};
use fault_support::{Deliveries, RECEIVE_LIMIT, Seeded, metric};
use jiff::Timestamp;
use serde_json::json;

const HEALTHY: usize = 20;
const FAILED: &str = "clockworks_fires_total{outcome=\"failed\"}";
/// Larger than RabbitMQ's largest frame (128 KiB), which must hold all of a message's headers.
const OVERSIZED_HEADER_BYTES: usize = 200 * 1024;

/// A timer due at `due` that the api would never have stored: `change` corrupts it.
fn corrupt(id: &str, due: Timestamp, change: impl FnOnce(&mut SeedTimer)) -> SeedTimer {
    let mut timer = SeedTimer::at("acme", id, due);
    change(&mut timer);
    timer
}

/// `(id, state, failure_reason)` of every timer whose id starts with `corrupt-`, once none is
/// scheduled any more (or after a generous wait).
async fn corrupt_rows(stack: &Stack) -> Result<Vec<(String, String, Option<String>)>> {
    let client = stack.db.client().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = client
            .query(
                "select id, state, failure_reason
                 from timers
                 where id like 'corrupt-%'
                 order by id",
                &[],
            )
            .await?;
        let rows: Vec<(String, String, Option<String>)> = rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        let settled = rows.iter().all(|(_, state, _)| state != "scheduled");
        if settled || tokio::time::Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rows_that_cannot_be_fired_are_set_aside_with_a_reason_and_the_rest_fire() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let admin = stack.workers[0].admin_url.clone();
    let mut consumer = stack.consumer("acme.#").await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, 1_000).await?;
    // The corrupt rows are due first, so they are claimed with or before the healthy ones.
    let earlier = Timestamp::from_millisecond(due.as_millisecond() - 1)?;
    let corrupt_rows_seeded = [
        corrupt("corrupt-header-number", earlier, |t| {
            t.headers = json!({"n": 1});
        }),
        corrupt("corrupt-headers-array", earlier, |t| {
            t.headers = json!(["x"]);
        }),
        corrupt("corrupt-headers-oversized", earlier, |t| {
            t.headers = json!({"big": "x".repeat(OVERSIZED_HEADER_BYTES)});
        }),
        corrupt("corrupt-routing-key", earlier, |t| {
            t.routing_key = "k".repeat(300);
        }),
    ];
    let healthy: Vec<SeedTimer> = (0..HEALTHY)
        .map(|n| SeedTimer::at("acme", &format!("t-{n:05}"), due))
        .collect();
    seed::insert(&client, &corrupt_rows_seeded).await?;
    seed::insert(&client, &healthy).await?;
    let seeded = Seeded {
        due,
        message_ids: healthy
            .iter()
            .map(|t| (t.id.clone(), clockworks::message::message_id(t.uid, 1)))
            .collect(),
    };

    // Any delivery of a corrupt timer would fail this: it is not one of the seeded timers.
    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    assert_eq!(deliveries.assert_promises(&seeded), 0);

    let rows = corrupt_rows(&stack).await?;
    assert_eq!(rows.len(), corrupt_rows_seeded.len());
    for (id, state, reason) in &rows {
        assert_eq!(state, "failed", "{id}");
        let reason = reason.as_deref().unwrap_or_default();
        let expected = match id.as_str() {
            "corrupt-header-number" => "not a string",
            "corrupt-headers-array" => "not an object",
            "corrupt-headers-oversized" => "longer than",
            _ => "routing key",
        };
        assert!(reason.contains(expected), "{id}: {reason:?}");
    }
    let fires: i64 = client
        .query_one(
            "select count(*) from fires where timer_id like 'corrupt-%'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(fires, 0);
    assert_eq!(metric(&stack, &admin, FAILED).await?, rows.len() as f64);

    stack.shutdown().await
}
