//! An accepted operation completes exactly once whatever dies: the api copy that accepted it
//! (killed right after its 202), or the worker applying it (killed in the middle).

use crate::batch_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use batch_support::{accepted, count, finished, send, timers, write_key};
use clockworks::store::operations::{self, NewOperation, OperationRequest, TimerItem};
use clockworks_tests::Stack;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Items of the operation a worker is killed applying: enough that applying it takes
/// seconds, so that the worker can be killed in the middle.
const LARGE_OPERATION: usize = 50_000;
/// Generous bound for a large operation to be started or finished on a busy machine.
const OPERATION_LIMIT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn an_operation_completes_after_the_api_that_accepted_it_is_killed() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_api(&[]).await?;
    let key = write_key(&stack, "acme").await?;
    let batch = Value::Array(timers("kept", 200, "g", &json!({"after": "1h"})));

    let response = send(&stack, Method::POST, "/v1/timers", &key, Some(&batch)).await?;
    let location = accepted(response).await?;
    if let Some(api) = stack.api.as_mut() {
        api.process.kill_and_wait().await;
    }

    let pending = "pending";
    let stored = count(
        &stack,
        "select count(*) from operations where status = $1",
        &[&pending],
    )
    .await?;
    assert_eq!(stored, 1, "the operation was stored before the 202");
    stack.start_worker(&[]).await?;
    stack.start_api(&[]).await?;
    let operation = finished(&stack, &key, &location).await?;
    assert_eq!(operation["status"], "succeeded");
    assert_eq!(operation["counts"]["created"], 200);
    assert_eq!(
        count(&stack, "select count(*) from timers", &[]).await?,
        200
    );
    stack.shutdown().await
}

/// The status and start count of an operation, read from the database.
async fn status(client: &tokio_postgres::Client, id: Uuid) -> Result<(String, i32)> {
    let row = client
        .query_one(
            "select status, attempts
             from operations
             where id = $1",
            &[&id],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Waits until the operation has the status `wanted`.
async fn wait_for_status(client: &tokio_postgres::Client, id: Uuid, wanted: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + OPERATION_LIMIT;
    loop {
        let (current, _) = status(client, id).await?;
        if current == wanted {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("operation {id} is {current}, not {wanted}, after {OPERATION_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Stores a create operation of `count` timers the way the api does, bypassing its batch
/// size limit.
async fn submit_large_create(client: &tokio_postgres::Client, count: usize) -> Result<Uuid> {
    let items = (0..count)
        .map(|n| TimerItem {
            id: format!("large-{n:06}"),
            version: None,
            group: Some("large".to_owned()),
            schedule: json!({"after": "1h"}),
            routing_key: "large".to_owned(),
            payload: json!({"n": n, "filler": "x".repeat(64)}),
            headers: BTreeMap::new(),
            expire_after_ms: None,
        })
        .collect();
    let request = OperationRequest::Create { items };
    let id = Uuid::now_v7();
    operations::submit(
        client,
        &NewOperation {
            id,
            namespace: "acme",
            request: &request,
            idempotency_key: None,
            request_hash: &[],
        },
    )
    .await?;
    Ok(id)
}

#[tokio::test]
async fn a_worker_killed_while_applying_an_operation_leaves_it_to_another_which_applies_it_once()
-> Result<()> {
    let mut stack = Stack::new().await?;
    let client = stack.db.client().await?;
    let id = submit_large_create(&client, LARGE_OPERATION).await?;

    let (started, running) = tokio::join!(
        stack.start_worker(&[]),
        wait_for_status(&client, id, "running")
    );
    started?;
    running?;
    stack.workers[0].process.kill_and_wait().await;

    let (after_kill, attempts) = status(&client, id).await?;
    assert_eq!(
        after_kill, "running",
        "the worker finished before it was killed; the operation is too small to test this"
    );
    assert_eq!(attempts, 1);
    assert_eq!(count(&stack, "select count(*) from timers", &[]).await?, 0);
    assert_eq!(
        count(&stack, "select count(*) from operation_items", &[]).await?,
        0
    );

    stack.start_worker(&[]).await?;
    wait_for_status(&client, id, "succeeded").await?;

    let (_, attempts) = status(&client, id).await?;
    assert_eq!(attempts, 2);
    let expected = LARGE_OPERATION as i64;
    assert_eq!(
        count(&stack, "select count(*) from timers", &[]).await?,
        expected
    );
    let items = count(
        &stack,
        "select count(distinct item_index) from operation_items where operation_id = $1",
        &[&id],
    )
    .await?;
    assert_eq!(items, expected);
    let created = "created";
    let results = count(
        &stack,
        "select count(*) from operation_items where operation_id = $1 and outcome = $2",
        &[&id, &created],
    )
    .await?;
    assert_eq!(
        results, expected,
        "every item applied once, by the second worker"
    );
    stack.shutdown().await
}
