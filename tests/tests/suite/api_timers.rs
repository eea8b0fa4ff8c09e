//! Creating, reading and deleting single timers through the real api and PostgreSQL,
//! including safe retries of a create and concurrent creates of one id.

use anyhow::Result;
use clockworks_tests::Stack;
use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// How many creates of one id race in the concurrency tests.
const CONCURRENT_CREATES: usize = 16;

async fn stack_with_key() -> Result<(Stack, String)> {
    let stack = Stack::start(0).await?;
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

async fn create(stack: &Stack, key: &str, timer: &Value) -> Result<Response> {
    Ok(stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(key)
        .json(timer)
        .send()
        .await?)
}

async fn get(stack: &Stack, key: &str, id: &str) -> Result<Response> {
    let url = stack.url(&format!("/v1/timers/{id}"));
    Ok(stack.http.get(url).bearer_auth(key).send().await?)
}

async fn delete(stack: &Stack, key: &str, id: &str) -> Result<Response> {
    let url = stack.url(&format!("/v1/timers/{id}"));
    Ok(stack.http.delete(url).bearer_auth(key).send().await?)
}

fn instant(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not an instant"))
}

/// Asserts an answer with no content at all: the contract's "there is no such timer".
async fn assert_empty(response: Response) -> Result<()> {
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-type").is_none());
    assert_eq!(response.bytes().await?.len(), 0);
    Ok(())
}

#[tokio::test]
async fn a_timer_without_an_id_is_created_with_a_generated_uuid_v7() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "orders.reminder"});

    let response = create(&stack, &key, &timer).await?;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str()?.to_owned();
    let body: Value = response.json().await?;
    let id = body["id"].as_str().expect("an id").to_owned();
    assert_eq!(Uuid::parse_str(&id)?.get_version_num(), 7);
    assert_eq!(location, format!("/v1/timers/{id}"));
    assert_eq!(body["version"], 1);
    assert_eq!(stored_timers(&stack).await?, 1);
    stack.shutdown().await
}

#[tokio::test]
async fn a_timer_with_an_id_is_created_as_sent() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({
        "id": "order-42-reminder",
        "group": "orders",
        "schedule": {"at": "2031-01-01T09:00:00Z"},
        "routing_key": "orders.reminder",
        "payload": {"order": 42},
        "headers": {"trace-id": "abc"}
    });

    let response = create(&stack, &key, &timer).await?;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"],
        "/v1/timers/order-42-reminder"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await?;
    assert_eq!(body["id"], "order-42-reminder");
    assert_eq!(body["group"], "orders");
    assert_eq!(body["schedule"], json!({"at": "2031-01-01T09:00:00Z"}));
    assert_eq!(body["routing_key"], "orders.reminder");
    assert_eq!(body["payload"], json!({"order": 42}));
    assert_eq!(body["headers"], json!({"trace-id": "abc"}));
    assert_eq!(body["state"], "scheduled");
    assert_eq!(body["next_fire_at"], "2031-01-01T09:00:00Z");
    assert_eq!(body["fire_count"], 0);
    assert_eq!(body["last_fired_at"], Value::Null);
    assert_eq!(body["created_at"], body["updated_at"]);
    stack.shutdown().await
}

#[tokio::test]
async fn a_delayed_timer_is_due_its_delay_after_the_database_clock_at_creation() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"schedule": {"after": "90m"}, "routing_key": "k"});

    let body: Value = create(&stack, &key, &timer).await?.json().await?;

    let created_at = instant(&body["created_at"]);
    let next_fire_at = instant(&body["next_fire_at"]);
    assert_eq!(
        next_fire_at.duration_since(created_at),
        SignedDuration::from_mins(90)
    );
    stack.shutdown().await
}

#[tokio::test]
async fn a_created_timer_reads_back_the_same() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let created: Value = create(&stack, &key, &timer).await?.json().await?;

    let response = get(&stack, &key, "t1").await?;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let read: Value = response.json().await?;
    assert_eq!(read, created);
    stack.shutdown().await
}

#[tokio::test]
async fn reading_a_timer_that_does_not_exist_answers_an_empty_200() -> Result<()> {
    let (stack, key) = stack_with_key().await?;

    assert_empty(get(&stack, &key, "nothing-here").await?).await?;

    stack.shutdown().await
}

#[tokio::test]
async fn deleting_a_timer_answers_it_and_removes_it() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let created: Value = create(&stack, &key, &timer).await?.json().await?;

    let response = delete(&stack, &key, "t1").await?;

    assert_eq!(response.status(), StatusCode::OK);
    let deleted: Value = response.json().await?;
    assert_eq!(deleted, created);
    assert_empty(get(&stack, &key, "t1").await?).await?;
    assert_eq!(stored_timers(&stack).await?, 0);
    stack.shutdown().await
}

#[tokio::test]
async fn deleting_a_timer_that_does_not_exist_answers_an_empty_200() -> Result<()> {
    let (stack, key) = stack_with_key().await?;

    assert_empty(delete(&stack, &key, "nothing-here").await?).await?;

    stack.shutdown().await
}

#[tokio::test]
async fn repeating_a_create_with_the_same_definition_answers_the_stored_timer() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k",
                       "payload": {"a": [1, 2]}, "headers": {"x": "y"}});
    let first = create(&stack, &key, &timer).await?;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await?;

    let again = create(&stack, &key, &timer).await?;

    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["etag"], "\"1\"");
    let again: Value = again.json().await?;
    assert_eq!(again, first);
    assert_eq!(stored_timers(&stack).await?, 1);
    stack.shutdown().await
}

#[tokio::test]
async fn a_different_definition_under_a_taken_id_is_a_conflict() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let created: Value = create(&stack, &key, &timer).await?.json().await?;

    let other = json!({"id": "t1", "schedule": {"after": "2h"}, "routing_key": "k"});
    let response = create(&stack, &key, &other).await?;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/conflict");
    let stored: Value = get(&stack, &key, "t1").await?.json().await?;
    assert_eq!(stored, created);
    stack.shutdown().await
}

/// Sends every create of `timers` at once, checks that each is answered with one of
/// `allowed`, and returns how many were answered 201.
async fn create_concurrently(
    stack: &Stack,
    key: &str,
    timers: &[Value],
    allowed: &[StatusCode],
) -> Result<usize> {
    let responses = join_all(timers.iter().map(|timer| create(stack, key, timer))).await;
    let mut created = 0;
    for response in responses {
        let status = response?.status();
        assert!(
            allowed.contains(&status),
            "{status} is not one of {allowed:?}"
        );
        created += usize::from(status == StatusCode::CREATED);
    }
    Ok(created)
}

#[tokio::test]
async fn concurrent_creates_of_one_id_insert_once_and_never_fail() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let same = json!({"id": "same", "schedule": {"after": "1h"}, "routing_key": "k"});
    let timers = vec![same; CONCURRENT_CREATES];

    let allowed = [StatusCode::CREATED, StatusCode::OK];
    let created = create_concurrently(&stack, &key, &timers, &allowed).await?;

    assert_eq!(created, 1);
    assert_eq!(stored_timers(&stack).await?, 1);
    stack.shutdown().await
}

#[tokio::test]
async fn concurrent_creates_of_one_id_with_different_definitions_insert_once() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timers: Vec<Value> = (0..CONCURRENT_CREATES)
        .map(|n| {
            json!({"id": "contested", "schedule": {"after": "1h"}, "routing_key": "k",
                        "payload": n % 2})
        })
        .collect();

    let allowed = [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT];
    let created = create_concurrently(&stack, &key, &timers, &allowed).await?;

    assert_eq!(created, 1);
    assert_eq!(stored_timers(&stack).await?, 1);
    stack.shutdown().await
}

#[tokio::test]
async fn an_id_deleted_and_created_again_is_a_new_incarnation() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    let uid = async || -> Result<Uuid> {
        let client = stack.db.client().await?;
        Ok(client
            .query_one("select uid from timers where id = 't1'", &[])
            .await?
            .get(0))
    };
    create(&stack, &key, &timer).await?;
    let first = uid().await?;

    delete(&stack, &key, "t1").await?;
    let response = create(&stack, &key, &timer).await?;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_ne!(uid().await?, first);
    stack.shutdown().await
}

#[tokio::test]
async fn requests_and_timer_counts_are_exported_as_metrics() -> Result<()> {
    let (stack, key) = stack_with_key().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k"});
    create(&stack, &key, &timer).await?;
    delete(&stack, &key, "t1").await?;

    let metrics_url = format!("{}/metrics", stack.api().admin_url);
    let text = stack.http.get(metrics_url).send().await?.text().await?;

    let has_line = |prefix: &str| text.lines().any(|line| line.starts_with(prefix));
    assert!(has_line("clockworks_timers_created_total 1"), "{text}");
    assert!(has_line("clockworks_timers_deleted_total 1"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("clockworks_http_requests_total")
                && line.contains(r#"route="/v1/timers/{id}""#)
                && line.contains(r#"method="DELETE""#)
                && line.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(
        text.contains("clockworks_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"clockworks_db_pool_connections{state="idle"}"#),
        "{text}"
    );
    stack.shutdown().await
}
