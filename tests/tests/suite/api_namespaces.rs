//! Namespaces through the real api: a timer belongs to the namespace of the key that created
//! it, and to a key of any other namespace it does not exist.

use anyhow::Result;
use clockworks_tests::Stack;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

const SCOPES: [&str; 2] = ["timers:read", "timers:write"];
const ID: &str = "shared-id";

/// A request with `key` on the timer route `path`, with `body` as JSON if given.
async fn send(
    stack: &Stack,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Response> {
    let mut request = stack.http.request(method, stack.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    Ok(request.send().await?)
}

/// A stack with keys of namespaces `alpha` and `beta`, and alpha's timer [`ID`] as created.
async fn stack_with_alphas_timer() -> Result<(Stack, String, String, Value)> {
    let stack = Stack::start(0).await?;
    let alpha = stack.create_key("alpha", &SCOPES).await?;
    let beta = stack.create_key("beta", &SCOPES).await?;
    let timer = json!({"id": ID, "schedule": {"after": "1h"}, "routing_key": "a"});
    let response = send(&stack, &alpha, Method::POST, "/v1/timers", Some(&timer)).await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = response.json().await?;
    Ok((stack, alpha, beta, created))
}

/// Alpha's timer as alpha reads it through the api.
async fn alphas_timer(stack: &Stack, alpha: &str) -> Result<Value> {
    let response = send(stack, alpha, Method::GET, &format!("/v1/timers/{ID}"), None).await?;
    Ok(response.json().await?)
}

/// The routing key of alpha's timer, read from the database.
async fn alphas_routing_key_in_the_database(stack: &Stack) -> Result<Option<String>> {
    let client = stack.db.client().await?;
    let row = client
        .query_opt(
            "select routing_key from timers where namespace = 'alpha' and id = $1",
            &[&ID],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

async fn assert_empty(response: Response) -> Result<()> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await?.len(), 0);
    Ok(())
}

#[tokio::test]
async fn another_namespace_cannot_read_a_timer() -> Result<()> {
    let (stack, _alpha, beta, _) = stack_with_alphas_timer().await?;

    let response = send(
        &stack,
        &beta,
        Method::GET,
        &format!("/v1/timers/{ID}"),
        None,
    )
    .await?;

    assert_empty(response).await?;
    stack.shutdown().await
}

#[tokio::test]
async fn another_namespace_cannot_delete_a_timer() -> Result<()> {
    let (stack, alpha, beta, created) = stack_with_alphas_timer().await?;

    let path = format!("/v1/timers/{ID}");
    let response = send(&stack, &beta, Method::DELETE, &path, None).await?;

    assert_empty(response).await?;
    assert_eq!(alphas_timer(&stack, &alpha).await?, created);
    stack.shutdown().await
}

#[tokio::test]
async fn another_namespace_may_use_the_same_id_without_touching_the_first() -> Result<()> {
    let (stack, alpha, beta, created) = stack_with_alphas_timer().await?;
    let betas = json!({"id": ID, "schedule": {"after": "2h"}, "routing_key": "b"});

    let response = send(&stack, &beta, Method::POST, "/v1/timers", Some(&betas)).await?;

    assert_eq!(response.status(), StatusCode::CREATED);
    let betas_timer: Value = response.json().await?;
    assert_eq!(betas_timer["routing_key"], "b");
    assert_eq!(alphas_timer(&stack, &alpha).await?, created);
    assert_eq!(
        alphas_routing_key_in_the_database(&stack).await?.as_deref(),
        Some("a")
    );

    // Deleting beta's timer leaves alpha's.
    let path = format!("/v1/timers/{ID}");
    let deleted: Value = send(&stack, &beta, Method::DELETE, &path, None)
        .await?
        .json()
        .await?;
    assert_eq!(deleted["routing_key"], "b");
    assert_eq!(
        alphas_routing_key_in_the_database(&stack).await?.as_deref(),
        Some("a")
    );
    stack.shutdown().await
}
