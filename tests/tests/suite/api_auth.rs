//! Authentication and scopes of the HTTP API, against the real binary and PostgreSQL: every
//! `/v1` request needs a valid, unrevoked key holding the route's scope.

use anyhow::Result;
use clockworks_tests::Stack;
use clockworks_tests::process::run_to_completion;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

fn a_timer() -> Value {
    json!({"schedule": {"after": "1h"}, "routing_key": "orders.reminder", "payload": {"n": 1}})
}

/// `POST /v1/timers` of `timer` with the bearer token `token`.
async fn post_timer(stack: &Stack, token: &str, timer: &Value) -> Result<Response> {
    let request = stack.http.post(stack.url("/v1/timers"));
    Ok(request.bearer_auth(token).json(timer).send().await?)
}

/// `GET /v1/timers/{id}` with the bearer token `token`.
async fn read_timer(stack: &Stack, token: &str, id: &str) -> Result<Response> {
    let request = stack.http.get(stack.url(&format!("/v1/timers/{id}")));
    Ok(request.bearer_auth(token).send().await?)
}

async fn stored_timers(stack: &Stack) -> Result<i64> {
    let client = stack.db.client().await?;
    Ok(client
        .query_one("select count(*) from timers", &[])
        .await?
        .get(0))
}

/// The key id of a token `cw_<id>_<secret>`.
fn key_id(token: &str) -> &str {
    token
        .strip_prefix("cw_")
        .and_then(|rest| rest.split('_').next())
        .expect("a key token")
}

async fn revoke(stack: &Stack, token: &str) -> Result<()> {
    run_to_completion(
        "clockworks-api",
        &["keys", "revoke", key_id(token)],
        &[("DATABASE_URL", stack.db.url.as_str())],
    )
    .await?;
    Ok(())
}

/// Asserts a 401 problem whose challenge is `challenge`.
async fn assert_unauthorized(response: Response, challenge: &str) -> Result<()> {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], challenge);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/unauthorized");
    assert_eq!(problem["status"], 401);
    Ok(())
}

#[tokio::test]
async fn a_request_without_a_key_is_challenged_for_a_bearer_token() -> Result<()> {
    let stack = Stack::start(0).await?;

    let response = stack
        .http
        .post(stack.url("/v1/timers"))
        .json(&a_timer())
        .send()
        .await?;
    assert_unauthorized(response, "Bearer").await?;

    let response = stack.http.get(stack.url("/v1/timers/any")).send().await?;
    assert_unauthorized(response, "Bearer").await?;
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_malformed_key_is_refused_as_an_invalid_token() -> Result<()> {
    let stack = Stack::start(0).await?;

    for token in ["garbage", "cw_abc_def", ""] {
        let response = post_timer(&stack, token, &a_timer()).await?;
        assert_unauthorized(response, r#"Bearer error="invalid_token""#).await?;
    }
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_well_formed_key_that_was_never_created_is_refused() -> Result<()> {
    let stack = Stack::start(0).await?;
    let unknown = format!("cw_{}_{}", "0".repeat(16), "a".repeat(64));

    let response = post_timer(&stack, &unknown, &a_timer()).await?;

    assert_unauthorized(response, r#"Bearer error="invalid_token""#).await?;
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_key_with_a_wrong_secret_is_refused() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    let forged = format!("cw_{}_{}", key_id(&key), "b".repeat(64));

    // The genuine key first, so that the forged one meets a remembered key.
    let response = read_timer(&stack, &key, "x").await?;
    assert_eq!(response.status(), StatusCode::OK);
    let response = post_timer(&stack, &forged, &a_timer()).await?;

    assert_unauthorized(response, r#"Bearer error="invalid_token""#).await?;
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_revoked_key_is_refused() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    revoke(&stack, &key).await?;

    let response = post_timer(&stack, &key, &a_timer()).await?;

    assert_unauthorized(response, r#"Bearer error="invalid_token""#).await?;
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_key_revoked_after_use_stops_working_when_keys_are_not_cached() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack
        .start_api(&[("CLOCKWORKS_API_KEY_CACHE_TTL_MS", "0")])
        .await?;
    let key = stack.create_key("acme", &["timers:read"]).await?;
    let response = read_timer(&stack, &key, "x").await?;
    assert_eq!(response.status(), StatusCode::OK);

    revoke(&stack, &key).await?;

    let response = read_timer(&stack, &key, "x").await?;
    assert_unauthorized(response, r#"Bearer error="invalid_token""#).await?;
    stack.shutdown().await
}

#[tokio::test]
async fn a_read_only_key_cannot_create_a_timer() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["timers:read"]).await?;

    let response = post_timer(&stack, &key, &a_timer()).await?;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/forbidden");
    assert_eq!(problem["status"], 403);
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn the_scope_is_checked_before_the_body_is_read() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["timers:read"]).await?;

    let response = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("{not json")
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    stack.shutdown().await
}

#[tokio::test]
async fn a_write_only_key_cannot_read_a_timer() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["timers:write"]).await?;

    let response = read_timer(&stack, &key, "x").await?;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    stack.shutdown().await
}

#[tokio::test]
async fn an_admin_key_may_create_and_read_timers() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["admin"]).await?;

    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let created = post_timer(&stack, &key, &timer).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let read = read_timer(&stack, &key, "t1").await?;
    assert_eq!(read.status(), StatusCode::OK);
    let timer: Value = read.json().await?;
    assert_eq!(timer["id"], "t1");
    stack.shutdown().await
}

#[tokio::test]
async fn health_and_readiness_need_no_key() -> Result<()> {
    let stack = Stack::start(0).await?;

    for path in ["/healthz", "/readyz"] {
        let response = stack.http.get(stack.url(path)).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let admin = format!("{}{path}", stack.api().admin_url);
        let response = stack.http.get(admin).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "admin {path}");
    }
    stack.shutdown().await
}

#[tokio::test]
async fn keys_and_payloads_never_reach_the_log() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["timers:write"]).await?;
    let secret = key.rsplit('_').next().expect("a key has a secret");
    let forged = format!("cw_{}_{}", key_id(&key), "c".repeat(64));
    let marker = "payload-marker-5f3a";
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k", "payload": marker});

    for token in [key.as_str(), forged.as_str()] {
        post_timer(&stack, token, &timer).await?;
    }

    let log = stack.api().process.log()?;
    assert!(log.contains("/v1/timers"), "requests are logged: {log}");
    assert!(!log.contains(secret), "a key secret was logged");
    assert!(
        !log.contains(&"c".repeat(64)),
        "a presented secret was logged"
    );
    assert!(!log.contains(marker), "a payload was logged");
    stack.shutdown().await
}
