//! The api when PostgreSQL is away: requests are answered 503 with `Retry-After: 1` within a
//! bounded time, never left hanging, and the api serves again once the database is back.
//! The api reaches the database through a proxy that cuts or stalls the connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clockworks_tests::proxy::url_through;
use clockworks_tests::{Api, Proxy, Stack};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The api's query timeout in these tests, unless a test needs a request to stay longer.
const QUERY_TIMEOUT: (&str, &str) = ("CLOCKWORKS_API_DB_QUERY_TIMEOUT_MS", "1000");
/// A generous bound on how long a 503 may take: a hang shows as far longer.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
/// How long the api may take to serve again after the database returns.
const RECOVERY_WITHIN: Duration = Duration::from_secs(30);

/// The `host:port` of a `postgres://` URL.
async fn database_addr(url: &str) -> Result<SocketAddr> {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split(['/', '?']).next())
        .context("a URL with a scheme")?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    tokio::net::lookup_host(host_port)
        .await?
        .next()
        .context("the database host resolves")
}

/// A stack whose api (with settings `env`) reaches the database through a proxy, with a
/// key that has already been used (so the api knows it) and one stored timer.
async fn stack_behind_a_proxy(env: &[(&str, &str)]) -> Result<(Stack, Proxy, String)> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(database_addr(&stack.db.url).await?).await?;
    let api = Api::spawn(&url_through(&stack.db.url, &proxy), env).await?;
    stack.api = Some(api);
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    let response = create(&stack, &key, "before").await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    Ok((stack, proxy, key))
}

async fn create(stack: &Stack, key: &str, id: &str) -> Result<Response> {
    let timer = json!({"id": id, "schedule": {"after": "1h"}, "routing_key": "k"});
    Ok(stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(key)
        .json(&timer)
        .send()
        .await?)
}

async fn assert_unavailable(response: Response) -> Result<()> {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/unavailable");
    Ok(())
}

/// Retries creating `id` until the api stores it (201, or 200 if an earlier attempt that
/// was answered 503 reached the database after all).
async fn create_once_back(stack: &Stack, key: &str, id: &str) -> Result<StatusCode> {
    let deadline = Instant::now() + RECOVERY_WITHIN;
    loop {
        let status = create(stack, key, id).await?.status();
        if status.is_success() || Instant::now() > deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_cut_database_is_answered_503_at_once_and_served_again_when_back() -> Result<()> {
    let (stack, proxy, key) = stack_behind_a_proxy(&[QUERY_TIMEOUT]).await?;

    proxy.cut().await;
    let started = Instant::now();
    let response = create(&stack, &key, "during").await?;
    let took = started.elapsed();

    assert_unavailable(response).await?;
    assert!(took < ANSWER_WITHIN, "a 503 took {took:?}");
    let ready = stack.http.get(stack.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let alive = stack.http.get(stack.url("/healthz")).send().await?;
    assert_eq!(alive.status(), StatusCode::OK);

    proxy.restore();
    assert!(create_once_back(&stack, &key, "after").await?.is_success());
    let ready = stack.http.get(stack.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::OK);
    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn a_stalled_database_is_answered_503_instead_of_hanging() -> Result<()> {
    let (stack, proxy, key) = stack_behind_a_proxy(&[QUERY_TIMEOUT]).await?;

    proxy.stall();
    let started = Instant::now();
    let response = create(&stack, &key, "during").await?;
    let took = started.elapsed();

    assert_unavailable(response).await?;
    assert!(took < ANSWER_WITHIN, "a 503 took {took:?}");

    proxy.restore();
    assert!(create_once_back(&stack, &key, "during").await?.is_success());
    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503() -> Result<()> {
    let (stack, proxy, key) = stack_behind_a_proxy(&[
        ("CLOCKWORKS_API_MAX_IN_FLIGHT", "1"),
        ("CLOCKWORKS_API_DB_QUERY_TIMEOUT_MS", "5000"),
    ])
    .await?;
    proxy.stall();

    // One request holds the only slot while the database stalls; health checks, which never
    // touch the database, are shed from the moment it is in flight.
    let stuck = create(&stack, &key, "stuck");
    let probe = async {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let response = stack.http.get(stack.url("/healthz")).send().await?;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                return anyhow::Ok(response);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (stuck, shed) = tokio::join!(stuck, probe);

    assert_unavailable(shed?).await?;
    assert_unavailable(stuck?).await?;
    proxy.restore();
    let alive = stack.http.get(stack.url("/healthz")).send().await?;
    assert_eq!(alive.status(), StatusCode::OK);
    drop(proxy);
    stack.shutdown().await
}
