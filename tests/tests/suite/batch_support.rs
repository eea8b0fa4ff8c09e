//! What the batch tests share: sending batch requests, waiting for their operations to
//! finish, and reading the database directly.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clockworks_tests::Stack;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;

/// Generous bound for an operation to finish on a busy two-core machine.
pub const FINISH_LIMIT: Duration = Duration::from_secs(120);
/// How often an operation's status is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A stack with an api and `workers` workers, and a read-write key of namespace `acme`.
pub async fn stack_with_key(workers: usize) -> Result<(Stack, String)> {
    let stack = Stack::start(workers).await?;
    let key = write_key(&stack, "acme").await?;
    Ok((stack, key))
}

/// A read-write key of `namespace`.
pub async fn write_key(stack: &Stack, namespace: &str) -> Result<String> {
    stack
        .create_key(namespace, &["timers:read", "timers:write"])
        .await
}

/// Sends `method path` with `key`, and `body` as JSON if there is one.
pub async fn send(
    stack: &Stack,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Result<Response> {
    let mut request = stack.http.request(method, stack.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    Ok(request.send().await?)
}

/// `count` timer objects with ids `<prefix>-00000`..., each with `schedule` and group.
pub fn timers(prefix: &str, count: usize, group: &str, schedule: &Value) -> Vec<Value> {
    (0..count)
        .map(|n| {
            json!({
                "id": format!("{prefix}-{n:05}"),
                "group": group,
                "schedule": schedule,
                "routing_key": "batch.fired",
                "payload": {"n": n},
            })
        })
        .collect()
}

/// The operation path a 202 names, after checking that the answer is a 202 with the
/// operation in its body.
pub async fn accepted(response: Response) -> Result<String> {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await?;
    if status != StatusCode::ACCEPTED {
        bail!("expected 202, got {status}: {body}");
    }
    let location = location.context("a 202 has a Location")?;
    let operation: Value = serde_json::from_str(&body)?;
    assert_eq!(
        location,
        format!("/v1/operations/{}", operation["id"].as_str().unwrap())
    );
    Ok(location)
}

/// Polls the operation at `location` until it has finished; returns it with its items.
pub async fn finished(stack: &Stack, key: &str, location: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + FINISH_LIMIT;
    loop {
        let path = format!("{location}?items=false");
        let operation: Value = send(stack, Method::GET, &path, key, None)
            .await?
            .json()
            .await?;
        match operation["status"].as_str() {
            Some("succeeded" | "failed") => break,
            Some("pending" | "running") => {}
            other => bail!("unexpected operation status {other:?}: {operation}"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{location} did not finish within {FINISH_LIMIT:?}: {operation}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let path = format!("{location}?limit=10000");
    Ok(send(stack, Method::GET, &path, key, None)
        .await?
        .json()
        .await?)
}

/// Sends a batch and waits for its operation to succeed; returns the operation.
pub async fn apply(
    stack: &Stack,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let location = accepted(send(stack, method, path, key, body).await?).await?;
    let operation = finished(stack, key, &location).await?;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    Ok(operation)
}

/// `(index, id, outcome)` of every item result of an operation.
pub fn outcomes(operation: &Value) -> Vec<(i64, String, String)> {
    operation["items"]
        .as_array()
        .expect("the operation has items")
        .iter()
        .map(|item| {
            (
                item["index"].as_i64().unwrap(),
                item["id"].as_str().unwrap_or_default().to_owned(),
                item["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A count from the test's database, e.g. `select count(*) from timers where namespace = $1`.
pub async fn count(stack: &Stack, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<i64> {
    let client = stack.db.client().await?;
    Ok(client.query_one(sql, params).await?.get(0))
}
