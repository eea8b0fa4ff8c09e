//! How long large batches take from the POST to `succeeded`, through the real api and one
//! worker: one batch of 10,000 timers, and 100,000 timers as ten such batches sent one after
//! another without waiting. The figures are printed (`cargo test --test suite batch_speed --
//! --nocapture`); what is asserted is only that every timer was created once.

use crate::batch_support;

use std::time::{Duration, Instant};

use anyhow::Result;
use batch_support::{accepted, count, finished, send, stack_with_key, timers};
use clockworks_tests::Stack;
use reqwest::Method;
use serde_json::{Value, json};

/// Items per batch: the api's limit.
const BATCH_ITEMS: usize = 10_000;
/// Batches sent for the 100,000-timer figure.
const BATCHES: usize = 10;

/// Sends `batches` batches of [`BATCH_ITEMS`] timers, then waits for each to succeed;
/// returns the time from the first POST to the last `succeeded` and until the last 202.
async fn create_batches(stack: &Stack, key: &str, batches: usize) -> Result<(Duration, Duration)> {
    let bodies: Vec<Value> = (0..batches)
        .map(|batch| {
            let prefix = format!("speed{batch:02}");
            Value::Array(timers(
                &prefix,
                BATCH_ITEMS,
                "speed",
                &json!({"after": "1h"}),
            ))
        })
        .collect();

    let started = Instant::now();
    let mut locations = Vec::with_capacity(batches);
    for body in &bodies {
        let response = send(stack, Method::POST, "/v1/timers", key, Some(body)).await?;
        locations.push(accepted(response).await?);
    }
    let all_accepted = started.elapsed();
    for location in &locations {
        let operation = finished(stack, key, location).await?;
        assert_eq!(operation["status"], "succeeded", "{location}");
        assert_eq!(operation["counts"]["created"], BATCH_ITEMS);
    }
    Ok((started.elapsed(), all_accepted))
}

#[tokio::test]
async fn ten_thousand_and_a_hundred_thousand_timers_are_created_in_batches() -> Result<()> {
    let (stack, key) = stack_with_key(1).await?;

    let (one_batch, accepted_in) = create_batches(&stack, &key, 1).await?;
    println!(
        "batch create of {BATCH_ITEMS} timers: 202 after {} ms, succeeded after {} ms",
        accepted_in.as_millis(),
        one_batch.as_millis()
    );
    assert_eq!(
        count(&stack, "select count(*) from timers", &[]).await?,
        10_000
    );
    stack.shutdown().await?;

    let (stack, key) = stack_with_key(1).await?;
    let (all, accepted_in) = create_batches(&stack, &key, BATCHES).await?;
    let total = BATCHES * BATCH_ITEMS;
    println!(
        "batch create of {total} timers in {BATCHES} batches: all 202 after {} ms, \
         all succeeded after {} ms ({:.0} timers/s)",
        accepted_in.as_millis(),
        all.as_millis(),
        total as f64 / all.as_secs_f64()
    );
    assert_eq!(
        count(&stack, "select count(*) from timers", &[]).await?,
        total as i64
    );
    stack.shutdown().await
}
