//! Requests the HTTP API refuses: each is answered with an RFC 9457 problem of a stable type
//! that names what is wrong, and none of them stores anything.

use anyhow::Result;
use clockworks_tests::Stack;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The payload limit the api of these tests runs with, in bytes of JSON.
const MAX_PAYLOAD_BYTES: usize = 256;
/// The body limit the api of these tests runs with, in bytes.
const MAX_BODY_BYTES: usize = 4096;

/// A stack whose api has small payload and body limits, and a key that may write.
async fn stack_with_small_limits() -> Result<(Stack, String)> {
    let mut stack = Stack::new().await?;
    let payload = MAX_PAYLOAD_BYTES.to_string();
    let body = MAX_BODY_BYTES.to_string();
    stack
        .start_api(&[
            ("CLOCKWORKS_MAX_PAYLOAD_BYTES", payload.as_str()),
            ("CLOCKWORKS_MAX_BODY_BYTES", body.as_str()),
        ])
        .await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    Ok((stack, key))
}

async fn stored_timers(stack: &Stack) -> Result<i64> {
    let client = stack.db.client().await?;
    Ok(client
        .query_one("select count(*) from timers", &[])
        .await?
        .get(0))
}

/// Posts `body` as `content_type` and returns the status and the problem it was answered
/// with, after checking that the answer is a problem of that status.
async fn post(
    stack: &Stack,
    key: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Result<(StatusCode, Value)> {
    let response = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["title"].is_string());
    assert!(problem["detail"].is_string());
    Ok((status, problem))
}

/// Posts a timer object and expects a validation problem; returns the fields it named.
async fn refused_fields(stack: &Stack, key: &str, timer: Value) -> Result<Vec<String>> {
    let (status, problem) = post(stack, key, "application/json", timer.to_string()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "/problems/validation");
    let fields = problem["errors"]
        .as_array()
        .expect("a validation problem lists its errors")
        .iter()
        .map(|error| {
            assert!(error["detail"].is_string());
            error["field"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    Ok(fields)
}

#[tokio::test]
async fn a_schedule_at_that_is_not_an_instant_is_named() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let timer = json!({"schedule": {"at": "next tuesday"}, "routing_key": "orders.reminder"});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["schedule.at"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_routing_key_with_a_wildcard_is_named() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "orders.*"});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["routing_key"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn an_unknown_field_is_named() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k", "colour": "red"});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["colour"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let timer = json!({"schedule": {"after": "1h"}, "routing_key": 42});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["routing_key"]);
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k", "group": ["a"]});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["group"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_payload_over_the_limit_is_named() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let payload = "x".repeat(MAX_PAYLOAD_BYTES + 1);
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k", "payload": payload});
    assert_eq!(refused_fields(&stack, &key, timer).await?, ["payload"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn every_invalid_field_is_named_at_once() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let timer = json!({"id": "no spaces", "schedule": {"at": "soon"}, "version": 2});
    let mut fields = refused_fields(&stack, &key, timer).await?;
    fields.sort();
    assert_eq!(fields, ["id", "routing_key", "schedule.at", "version"]);

    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn malformed_json_is_refused_with_its_position() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let body = "{\"schedule\": {\"after\": \"1h\"},\n \"routing_key\": }";
    let (status, problem) = post(&stack, &key, "application/json", body).await?;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "/problems/malformed-json");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("line 2"), "{detail}");
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_json_value_that_is_neither_timer_nor_batch_is_refused() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    for body in ["42", "\"a timer\"", "null"] {
        let (status, problem) = post(&stack, &key, "application/json", body.to_owned()).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(problem["type"], "/problems/validation", "{body}");
    }
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_unsupported_media_type() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"}).to_string();

    let (status, problem) = post(&stack, &key, "text/plain", timer.clone()).await?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem["type"], "/problems/unsupported-media-type");
    assert_eq!(stored_timers(&stack).await?, 0);

    // JSON under a parameterised or structured-suffix type is accepted.
    for content_type in ["application/json; charset=utf-8", "application/timer+json"] {
        let response = stack
            .http
            .post(stack.url("/v1/timers"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(timer.clone())
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::CREATED, "{content_type}");
    }
    stack.shutdown().await
}

#[tokio::test]
async fn a_body_over_the_limit_is_too_large() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let padding = " ".repeat(MAX_BODY_BYTES);
    let body = format!("{{\"schedule\": {{\"after\": \"1h\"}}, \"routing_key\": \"k\"{padding}}}");
    let (status, problem) = post(&stack, &key, "application/json", body).await?;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["type"], "/problems/payload-too-large");
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn a_timer_id_that_could_never_exist_is_refused_in_the_path() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let response = stack
        .http
        .get(stack.url("/v1/timers/has%20space"))
        .bearer_auth(&key)
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "id");
    stack.shutdown().await
}

#[tokio::test]
async fn an_unknown_route_and_a_wrong_method_are_problems() -> Result<()> {
    let (stack, key) = stack_with_small_limits().await?;

    let response = stack
        .http
        .get(stack.url("/v2/nothing"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/not-found");

    let response = stack
        .http
        .patch(stack.url("/v1/timers"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str()?.to_owned();
    for method in ["GET", "POST", "PUT", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/method-not-allowed");
    stack.shutdown().await
}
