//! A namespace can never read or change another's timers, operations or fire history. A key
//! of namespace `beta` is sent to every `/v1` route of the api's router, aimed at namespace
//! `alpha`'s timers, group, operation and idempotency key: every read finds nothing, and
//! every write either finds nothing or acts on beta's own timers. Alpha's rows (timers,
//! fires, operations and their items) are compared before and after, field by field.

use crate::batch_support;

use anyhow::Result;
use batch_support::{accepted, apply, finished, send, stack_with_key, write_key};
use clockworks_tests::Stack;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

const GROUP: &str = "shared-group";
const IDEMPOTENCY_KEY: &str = "shared-idempotency-key";
/// Alpha's timers: one scheduled, one paused, and two created by a batch.
const SCHEDULED: &str = "a-scheduled";
const PAUSED: &str = "a-paused";
const BATCHED: [&str; 2] = ["a-batch-0", "a-batch-1"];

/// A timer definition whose payload names the namespace that sent it.
fn timer(id: &str, owner: &str) -> Value {
    json!({"id": id, "group": GROUP, "schedule": {"after": "1h"}, "routing_key": "r",
           "payload": {"owner": owner}})
}

/// Whose timer this JSON timer is, by the owner its payload names.
fn owner(timer: &Value) -> &str {
    timer["payload"]["owner"].as_str().unwrap_or_default()
}

/// Every row of alpha's, as JSON, in a stable order: what no request of beta's may change.
async fn alphas_rows(stack: &Stack) -> Result<Value> {
    let client = stack.db.client().await?;
    let row = client
        .query_one(
            "select
                 (select coalesce(jsonb_agg(to_jsonb(t) order by t.id), '[]')
                  from timers t
                  where t.namespace = 'alpha'),
                 (select coalesce(jsonb_agg(to_jsonb(f) order by f.timer_id, f.fire_seq), '[]')
                  from fires f
                  where f.namespace = 'alpha'),
                 (select coalesce(jsonb_agg(to_jsonb(o) order by o.id), '[]')
                  from operations o
                  where o.namespace = 'alpha'),
                 (select coalesce(jsonb_agg(to_jsonb(i) order by i.operation_id, i.item_index),
                                  '[]')
                  from operation_items i
                  join operations o on o.id = i.operation_id
                  where o.namespace = 'alpha')",
            &[],
        )
        .await?;
    let rows = json!({
        "timers": row.get::<_, Value>(0),
        "fires": row.get::<_, Value>(1),
        "operations": row.get::<_, Value>(2),
        "operation_items": row.get::<_, Value>(3),
    });
    Ok(rows)
}

/// Alpha's timers, a recorded fire, a group and a finished operation created with an
/// idempotency key; returns the operation's path.
async fn alpha_with_everything(stack: &Stack, alpha: &str) -> Result<String> {
    for id in [SCHEDULED, PAUSED] {
        let created = send(
            stack,
            Method::POST,
            "/v1/timers",
            alpha,
            Some(&timer(id, "alpha")),
        )
        .await?;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let pause = format!("/v1/timers/{PAUSED}/pause");
    assert_eq!(
        send(stack, Method::POST, &pause, alpha, None)
            .await?
            .status(),
        StatusCode::OK
    );

    let client = stack.db.client().await?;
    client
        .execute(
            "insert into fires (timer_uid, fire_seq, namespace, timer_id, scheduled_at,
                                fired_at)
             select uid, 1, namespace, id, now() - interval '1 minute', now()
             from timers
             where namespace = 'alpha'
               and id = $1",
            &[&SCHEDULED],
        )
        .await?;

    let batch = Value::Array(BATCHED.iter().map(|id| timer(id, "alpha")).collect());
    let response = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(alpha)
        .header("Idempotency-Key", IDEMPOTENCY_KEY)
        .json(&batch)
        .send()
        .await?;
    let location = accepted(response).await?;
    let operation = finished(stack, alpha, &location).await?;
    assert_eq!(operation["counts"]["created"], 2, "{operation}");
    Ok(location)
}

/// Asserts a 200 with an empty body: "no such resource" to this namespace.
async fn assert_nothing(response: Response, what: &str) -> Result<()> {
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    let body = response.text().await?;
    assert!(body.is_empty(), "{what} answered {body}");
    Ok(())
}

/// Sends a request with beta's key and expects the body to be JSON; returns it.
async fn json_of(stack: &Stack, method: Method, path: &str, key: &str) -> Result<Value> {
    let response = send(stack, method, path, key, None).await?;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    Ok(response.json().await?)
}

/// Every route that reads: alpha's timers, history, operation and group are not there.
async fn beta_reads_nothing_of_alphas(stack: &Stack, beta: &str, operation: &str) -> Result<()> {
    for id in [SCHEDULED, PAUSED, BATCHED[0]] {
        let path = format!("/v1/timers/{id}");
        assert_nothing(send(stack, Method::GET, &path, beta, None).await?, &path).await?;
    }
    let fires = format!("/v1/timers/{SCHEDULED}/fires");
    assert_nothing(send(stack, Method::GET, &fires, beta, None).await?, &fires).await?;
    let preview = format!("/v1/timers/{SCHEDULED}/preview");
    assert_nothing(
        send(stack, Method::GET, &preview, beta, None).await?,
        &preview,
    )
    .await?;
    assert_nothing(
        send(stack, Method::GET, operation, beta, None).await?,
        operation,
    )
    .await?;

    for path in ["/v1/timers".to_owned(), format!("/v1/timers?group={GROUP}")] {
        let listed = json_of(stack, Method::GET, &path, beta).await?;
        let timers = listed["timers"].as_array().expect("a listing");
        assert!(
            timers.iter().all(|t| owner(t) == "beta"),
            "{path}: {listed}"
        );
    }
    let operations = json_of(stack, Method::GET, "/v1/operations", beta).await?;
    let alphas_id = operation.rsplit('/').next().expect("an operation path");
    assert!(
        operations["operations"]
            .as_array()
            .expect("a listing")
            .iter()
            .all(|listed| listed["id"] != alphas_id),
        "{operations}"
    );
    let groups = json_of(stack, Method::GET, "/v1/groups", beta).await?;
    let counted: i64 = groups["groups"]
        .as_array()
        .expect("a listing")
        .iter()
        .flat_map(|group| group["counts"].as_object().into_iter().flatten())
        .filter_map(|(_, count)| count.as_i64())
        .sum();
    let betas: i64 = stack
        .db
        .client()
        .await?
        .query_one(
            "select count(*) from timers where namespace = 'beta' and group_name is not null",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        counted, betas,
        "beta's groups count another's timers: {groups}"
    );
    Ok(())
}

/// Every single-timer route that changes a timer, aimed at alpha's ids: nothing found.
async fn beta_changes_none_of_alphas_timers(stack: &Stack, beta: &str) -> Result<()> {
    for (action, id) in [
        ("pause", SCHEDULED),
        ("resume", PAUSED),
        ("trigger", SCHEDULED),
        ("trigger", PAUSED),
    ] {
        let path = format!("/v1/timers/{id}/{action}");
        assert_nothing(send(stack, Method::POST, &path, beta, None).await?, &path).await?;
    }
    let path = format!("/v1/timers/{SCHEDULED}");
    assert_nothing(send(stack, Method::DELETE, &path, beta, None).await?, &path).await?;
    Ok(())
}

/// Every batch route and group action, aimed at alpha's ids and group: each operation is
/// beta's own and finds nothing of alpha's.
async fn beta_batches_find_none_of_alphas(stack: &Stack, beta: &str) -> Result<()> {
    let ids = json!({"ids": [SCHEDULED, PAUSED, BATCHED[0], BATCHED[1]]});
    let deleted = apply(stack, Method::DELETE, "/v1/timers", beta, Some(&ids)).await?;
    assert_eq!(deleted["counts"]["not_found"], 4, "{deleted}");
    let by_group = format!("/v1/timers?group={GROUP}");
    let deleted = apply(stack, Method::DELETE, &by_group, beta, None).await?;
    assert_eq!(deleted["item_count"], 0, "{deleted}");

    let replacements = Value::Array(vec![timer(SCHEDULED, "beta"), timer(BATCHED[0], "beta")]);
    let replaced = apply(stack, Method::PUT, "/v1/timers", beta, Some(&replacements)).await?;
    assert_eq!(replaced["counts"]["not_found"], 2, "{replaced}");

    for path in [
        format!("/v1/groups/{GROUP}/pause"),
        format!("/v1/groups/{GROUP}/resume"),
    ] {
        let operation = apply(stack, Method::POST, &path, beta, None).await?;
        assert_eq!(operation["item_count"], 0, "{path}: {operation}");
    }
    let group = format!("/v1/groups/{GROUP}");
    let operation = apply(stack, Method::DELETE, &group, beta, None).await?;
    assert_eq!(operation["item_count"], 0, "{group}: {operation}");
    Ok(())
}

/// The routes that create: with alpha's ids and alpha's idempotency key they create beta's
/// own timers and operation, never answer with alpha's.
async fn beta_creates_its_own_under_alphas_names(
    stack: &Stack,
    beta: &str,
    alphas_operation: &str,
) -> Result<()> {
    let mine = timer(SCHEDULED, "beta");
    let created = send(stack, Method::POST, "/v1/timers", beta, Some(&mine)).await?;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "a create met alpha's timer"
    );
    let path = format!("/v1/timers/{PAUSED}");
    let put = send(
        stack,
        Method::PUT,
        &path,
        beta,
        Some(&timer(PAUSED, "beta")),
    )
    .await?;
    assert_eq!(
        put.status(),
        StatusCode::CREATED,
        "a PUT replaced alpha's timer"
    );
    assert_eq!(put.json::<Value>().await?["state"], "scheduled");

    // The same idempotency key and the same request as alpha's batch.
    let batch = Value::Array(BATCHED.iter().map(|id| timer(id, "alpha")).collect());
    let response = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(beta)
        .header("Idempotency-Key", IDEMPOTENCY_KEY)
        .json(&batch)
        .send()
        .await?;
    let location = accepted(response).await?;
    assert_ne!(
        location, alphas_operation,
        "beta was given alpha's operation"
    );
    let operation = finished(stack, beta, &location).await?;
    assert_eq!(operation["counts"]["created"], 2, "{operation}");

    let preview = json!({"schedule": {"every": "1m"}, "count": 2});
    let previewed = send(
        stack,
        Method::POST,
        "/v1/schedules/preview",
        beta,
        Some(&preview),
    )
    .await?;
    assert_eq!(previewed.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_key_of_another_namespace_finds_and_changes_nothing_on_any_route() -> Result<()> {
    let (stack, _) = stack_with_key(1).await?;
    let alpha = write_key(&stack, "alpha").await?;
    let beta = write_key(&stack, "beta").await?;
    let alphas_operation = alpha_with_everything(&stack, &alpha).await?;
    let before = alphas_rows(&stack).await?;

    beta_reads_nothing_of_alphas(&stack, &beta, &alphas_operation).await?;
    beta_changes_none_of_alphas_timers(&stack, &beta).await?;
    beta_batches_find_none_of_alphas(&stack, &beta).await?;
    beta_creates_its_own_under_alphas_names(&stack, &beta, &alphas_operation).await?;
    // With beta's own timers of the same ids and group in place, reads still see only them.
    beta_reads_nothing_of_alphas_but_its_own(&stack, &beta, &alphas_operation).await?;

    assert_eq!(alphas_rows(&stack).await?, before, "alpha's rows changed");
    let alphas_view = json_of(&stack, Method::GET, &format!("/v1/timers/{PAUSED}"), &alpha).await?;
    assert_eq!(alphas_view["state"], "paused");
    stack.shutdown().await
}

/// After beta created timers under alpha's ids: beta reads its own, never alpha's.
async fn beta_reads_nothing_of_alphas_but_its_own(
    stack: &Stack,
    beta: &str,
    alphas_operation: &str,
) -> Result<()> {
    for id in [SCHEDULED, PAUSED, BATCHED[0]] {
        let path = format!("/v1/timers/{id}");
        let read = json_of(stack, Method::GET, &path, beta).await?;
        let expected = if BATCHED.contains(&id) {
            "alpha"
        } else {
            "beta"
        };
        // Beta's batch repeated alpha's request to the letter, payloads included.
        assert_eq!(owner(&read), expected, "{path}: {read}");
        assert_eq!(read["version"], 1, "{path}: {read}");
    }
    let fires = json_of(
        stack,
        Method::GET,
        &format!("/v1/timers/{SCHEDULED}/fires"),
        beta,
    )
    .await?;
    assert_eq!(fires["fires"], json!([]), "beta sees alpha's fire history");
    assert_nothing(
        send(stack, Method::GET, alphas_operation, beta, None).await?,
        alphas_operation,
    )
    .await?;
    Ok(())
}
