//! Batch create, replace and delete through the real api and worker: operations accepted
//! with 202, applied by the worker, per-item outcomes, validation of the whole batch before
//! anything is stored, idempotency keys, and namespaces.

use crate::batch_support;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use batch_support::{
    accepted, apply, count, finished, outcomes, send, stack_with_key, timers, write_key,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How many timers the large batch creates.
const LARGE_BATCH: usize = 1_000;
/// Generous bound for a thousand fires on a busy machine.
const FIRE_LIMIT: Duration = Duration::from_secs(120);
/// After the last expected fire, how long to keep listening for extra ones.
const QUIET_WINDOW: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_thousand_timers_created_in_one_batch_each_fire_once_and_a_repeat_creates_nothing()
-> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let batch = Value::Array(timers("big", LARGE_BATCH, "big", &json!({"after": "2s"})));

    let operation = apply(&stack, Method::POST, "/v1/timers", &key, Some(&batch)).await?;

    assert_eq!(operation["kind"], "create");
    assert_eq!(operation["counts"]["created"], LARGE_BATCH);
    assert_eq!(operation["item_count"], LARGE_BATCH);
    let results = outcomes(&operation);
    assert_eq!(results.len(), LARGE_BATCH);
    for (position, (index, id, outcome)) in results.iter().enumerate() {
        assert_eq!(*index, position as i64);
        assert_eq!(id, &format!("big-{position:05}"));
        assert_eq!(outcome, "created");
    }
    for n in [0, 499, 999] {
        let timer: Value = send(
            &stack,
            Method::GET,
            &format!("/v1/timers/big-{n:05}"),
            &key,
            None,
        )
        .await?
        .json()
        .await?;
        assert_eq!(timer["payload"], json!({"n": n}));
        assert_eq!(timer["group"], "big");
    }
    let groups: Value = send(&stack, Method::GET, "/v1/groups", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(groups["groups"][0]["group"], "big");
    assert_eq!(groups["groups"][0]["total"], LARGE_BATCH);

    let fired = consumer.collect(LARGE_BATCH, FIRE_LIMIT).await;
    let extra = consumer.collect_for(QUIET_WINDOW).await;
    let message_ids: BTreeSet<String> = fired
        .iter()
        .map(|fired| fired.message_id.clone().unwrap_or_default())
        .collect();
    let timer_ids: BTreeSet<&str> = fired.iter().map(|fired| fired.timer_id()).collect();
    assert_eq!(message_ids.len(), LARGE_BATCH);
    assert_eq!(timer_ids.len(), LARGE_BATCH);
    assert!(extra.is_empty(), "{} fires more than timers", extra.len());
    assert!(fired.iter().all(|f| f.received_at >= f.scheduled_at()));

    let again = apply(&stack, Method::POST, "/v1/timers", &key, Some(&batch)).await?;
    assert_eq!(again["counts"]["existing"], LARGE_BATCH);
    assert_eq!(again["counts"]["created"], 0);
    assert!(outcomes(&again).iter().all(|(_, _, o)| o == "existing"));
    let stored = count(&stack, "select count(*) from timers", &[]).await?;
    assert_eq!(stored, LARGE_BATCH as i64);
    assert!(consumer.collect_for(QUIET_WINDOW).await.is_empty());
    stack.shutdown().await
}

#[tokio::test]
async fn a_repeated_create_of_a_changed_timer_is_a_conflict_item() -> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let first = Value::Array(timers("c", 2, "g", &json!({"after": "1h"})));
    apply(&stack, Method::POST, "/v1/timers", &key, Some(&first)).await?;

    let mut changed = timers("c", 3, "g", &json!({"after": "1h"}));
    changed[1]["payload"] = json!("different");
    let operation = apply(
        &stack,
        Method::POST,
        "/v1/timers",
        &key,
        Some(&Value::Array(changed)),
    )
    .await?;

    let results: Vec<String> = outcomes(&operation).into_iter().map(|r| r.2).collect();
    assert_eq!(results, ["existing", "conflict", "created"]);
    assert!(operation["items"][1]["error"].is_string());
    let timer: Value = send(&stack, Method::GET, "/v1/timers/c-00001", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(timer["payload"], json!({"n": 1}));
    stack.shutdown().await
}

#[tokio::test]
async fn a_batch_with_invalid_items_is_refused_whole_naming_each_bad_item() -> Result<()> {
    let (stack, key) = stack_with_key(0).await?;
    let mut batch = timers("v", 10, "g", &json!({"after": "1h"}));
    batch[3]["schedule"] = json!({"at": "next tuesday"});
    batch[7].as_object_mut().unwrap().remove("routing_key");

    let response = send(
        &stack,
        Method::POST,
        "/v1/timers",
        &key,
        Some(&json!(batch)),
    )
    .await?;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["[3].schedule.at", "[7].routing_key"]);
    assert_eq!(count(&stack, "select count(*) from timers", &[]).await?, 0);
    assert_eq!(
        count(&stack, "select count(*) from operations", &[]).await?,
        0
    );
    stack.shutdown().await
}

#[tokio::test]
async fn empty_oversized_and_self_repeating_batches_are_refused() -> Result<()> {
    let (stack, key) = stack_with_key(0).await?;
    let one = timers("r", 1, "g", &json!({"after": "1h"})).remove(0);
    let mut repeating = timers("r", 3, "g", &json!({"after": "1h"}));
    repeating[2]["id"] = json!("r-00000");
    let refused = [
        json!([]),
        Value::Array(vec![one; 10_001]),
        Value::Array(repeating),
    ];

    for body in &refused {
        let response = send(&stack, Method::POST, "/v1/timers", &key, Some(body)).await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let response = send(&stack, Method::DELETE, "/v1/timers", &key, None).await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let both = json!({"ids": ["a"]});
    let response = send(
        &stack,
        Method::DELETE,
        "/v1/timers?group=g",
        &key,
        Some(&both),
    )
    .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(&stack, Method::PUT, "/v1/timers", &key, Some(&json!({}))).await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        count(&stack, "select count(*) from operations", &[]).await?,
        0
    );
    stack.shutdown().await
}

#[tokio::test]
async fn a_batch_replace_reports_a_missing_id_and_a_moved_version_and_replaces_the_rest()
-> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let created = Value::Array(timers("p", 4, "g", &json!({"after": "1h"})));
    apply(&stack, Method::POST, "/v1/timers", &key, Some(&created)).await?;

    let mut replacements = timers("p", 4, "g2", &json!({"after": "2h"}));
    replacements[1]["version"] = json!(1);
    replacements[2]["version"] = json!(7);
    replacements.push(json!({"id": "absent", "schedule": {"after": "1h"}, "routing_key": "k"}));
    let operation = apply(
        &stack,
        Method::PUT,
        "/v1/timers",
        &key,
        Some(&Value::Array(replacements)),
    )
    .await?;

    let results: Vec<String> = outcomes(&operation).into_iter().map(|r| r.2).collect();
    assert_eq!(
        results,
        ["replaced", "replaced", "conflict", "replaced", "not_found"]
    );
    assert_eq!(operation["counts"]["replaced"], 3);
    assert_eq!(operation["items"][4]["id"], "absent");
    let replaced: Value = send(&stack, Method::GET, "/v1/timers/p-00001", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(
        (replaced["group"].clone(), replaced["version"].clone()),
        (json!("g2"), json!(2))
    );
    assert_eq!(replaced["schedule"], json!({"after": "2h"}));
    let kept: Value = send(&stack, Method::GET, "/v1/timers/p-00002", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(
        (kept["group"].clone(), kept["version"].clone()),
        (json!("g"), json!(1))
    );
    assert_eq!(count(&stack, "select count(*) from timers", &[]).await?, 4);
    stack.shutdown().await
}

#[tokio::test]
async fn a_batch_delete_by_ids_reports_each_id() -> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let created = Value::Array(timers("d", 3, "g", &json!({"after": "1h"})));
    apply(&stack, Method::POST, "/v1/timers", &key, Some(&created)).await?;

    let body = json!({"ids": ["d-00002", "nope", "d-00000"]});
    let operation = apply(&stack, Method::DELETE, "/v1/timers", &key, Some(&body)).await?;

    assert_eq!(
        outcomes(&operation),
        [
            (0, "d-00002".to_owned(), "deleted".to_owned()),
            (1, "nope".to_owned(), "not_found".to_owned()),
            (2, "d-00000".to_owned(), "deleted".to_owned()),
        ]
    );
    let left = count(
        &stack,
        "select count(*) from timers where id = $1",
        &[&"d-00001"],
    )
    .await?;
    assert_eq!(left, 1);
    assert_eq!(count(&stack, "select count(*) from timers", &[]).await?, 1);
    stack.shutdown().await
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_operation_for_the_same_request_and_409_otherwise()
-> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let other_key = write_key(&stack, "globex").await?;
    let batch = json!([{"schedule": {"after": "1h"}, "routing_key": "k"}]);
    let changed = json!([{"schedule": {"after": "2h"}, "routing_key": "k"}]);
    let post = |key: &str, body: &Value| {
        stack
            .http
            .post(stack.url("/v1/timers"))
            .bearer_auth(key)
            .header("Idempotency-Key", "order-batch-7")
            .json(body)
            .send()
    };

    let first = accepted(post(&key, &batch).await?).await?;
    finished(&stack, &key, &first).await?;
    let repeated = accepted(post(&key, &batch).await?).await?;
    let conflicting = post(&key, &changed).await?;
    let elsewhere = accepted(post(&other_key, &batch).await?).await?;

    assert_eq!(repeated, first);
    assert_eq!(conflicting.status(), StatusCode::CONFLICT);
    let problem: Value = conflicting.json().await?;
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_ne!(elsewhere, first);
    finished(&stack, &other_key, &elsewhere).await?;
    let acme = "acme";
    let stored = count(
        &stack,
        "select count(*) from timers where namespace = $1",
        &[&acme],
    )
    .await?;
    assert_eq!(stored, 1, "the repeat created no second timer");
    stack.shutdown().await
}

#[tokio::test]
async fn to_another_namespace_an_operation_and_its_timers_do_not_exist() -> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let intruder = write_key(&stack, "globex").await?;
    let batch = Value::Array(timers("n", 3, "shared-name", &json!({"after": "1h"})));
    let location =
        accepted(send(&stack, Method::POST, "/v1/timers", &key, Some(&batch)).await?).await?;
    finished(&stack, &key, &location).await?;

    let read = send(&stack, Method::GET, &location, &intruder, None).await?;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.bytes().await?.len(), 0);
    let listed: Value = send(&stack, Method::GET, "/v1/operations", &intruder, None)
        .await?
        .json()
        .await?;
    assert_eq!(listed["operations"], json!([]));
    let groups: Value = send(&stack, Method::GET, "/v1/groups", &intruder, None)
        .await?
        .json()
        .await?;
    assert_eq!(groups["groups"], json!([]));

    let ids = json!({"ids": ["n-00000", "n-00001"]});
    let deleted = apply(&stack, Method::DELETE, "/v1/timers", &intruder, Some(&ids)).await?;
    assert_eq!(deleted["counts"]["not_found"], 2);
    let replaced = apply(&stack, Method::PUT, "/v1/timers", &intruder, Some(&batch)).await?;
    assert_eq!(replaced["counts"]["not_found"], 3);
    for path in [
        "/v1/groups/shared-name/pause",
        "/v1/groups/shared-name/resume",
    ] {
        let operation = apply(&stack, Method::POST, path, &intruder, None).await?;
        assert_eq!(operation["item_count"], 0, "{path}");
    }
    let operation = apply(
        &stack,
        Method::DELETE,
        "/v1/groups/shared-name",
        &intruder,
        None,
    )
    .await?;
    assert_eq!(operation["counts"]["deleted"], 0);

    let own: Value = send(&stack, Method::GET, "/v1/operations", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(own["operations"].as_array().unwrap().len(), 1);
    let acme = "acme";
    let unchanged = count(
        &stack,
        "select count(*) from timers where namespace = $1 and version = 1 and state = 'scheduled'",
        &[&acme],
    )
    .await?;
    assert_eq!(unchanged, 3);
    stack.shutdown().await
}
