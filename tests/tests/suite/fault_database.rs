//! PostgreSQL cut under the api and the worker at once, through one proxy: the api answers
//! 503 with `Retry-After: 1` at once and serves again soon after the database is back, and
//! the timers that came due during the cut fire after it, none early and none lost.

use crate::fault_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clockworks_tests::proxy::url_through;
use clockworks_tests::seed;
use clockworks_tests::{Api, Proxy, Stack};
use fault_support::{Deliveries, RECEIVE_LIMIT, Seeded, settled, upstream};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

const TIMERS: usize = 50;
/// The timers come due this long after the test starts creating them, which is inside the
/// cut that follows their creation...
const DUE_IN_MS: u64 = 5_000;
/// ...and the cut lasts this long past their due instant.
const CUT_PAST_DUE: Duration = Duration::from_secs(4);
/// How soon a request to a cut database is answered.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(2);
/// How soon after the database is back the api serves again.
const RECOVERED_WITHIN: Duration = Duration::from_secs(5);

async fn create(stack: &Stack, key: &str, timer: &Value) -> Result<Response> {
    Ok(stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(key)
        .json(timer)
        .send()
        .await?)
}

/// Creates [`TIMERS`] one-shot timers through the api, all due at one instant.
async fn create_timers(stack: &Stack, key: &str) -> Result<Seeded> {
    let client = stack.db.client().await?;
    let due = seed::due_in(&client, i64::try_from(DUE_IN_MS)?).await?;
    let mut message_ids = BTreeMap::new();
    for n in 0..TIMERS {
        let id = format!("t-{n:05}");
        let timer = json!({"id": id, "schedule": {"at": due}, "routing_key": "fired"});
        let response = create(stack, key, &timer).await?;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await?;
        let uid: uuid::Uuid = client
            .query_one(
                "select uid from timers where namespace = 'acme' and id = $1",
                &[&id],
            )
            .await?
            .get(0);
        assert_eq!(created["id"], id.as_str());
        message_ids.insert(id, clockworks::message::message_id(uid, 1));
    }
    Ok(Seeded { due, message_ids })
}

#[tokio::test]
async fn timers_due_during_a_database_cut_fire_after_it_while_the_api_answers_503() -> Result<()> {
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&stack.db.url).await?).await?;
    let through = url_through(&stack.db.url, &proxy);
    stack.api = Some(Api::spawn(&through, &[]).await?);
    stack.start_worker(&[("DATABASE_URL", &through)]).await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let due_at = Instant::now() + Duration::from_millis(DUE_IN_MS);
    let seeded = create_timers(&stack, &key).await?;

    proxy.cut().await;
    assert!(
        Instant::now() < due_at,
        "creating the timers took so long that they came due before the cut"
    );
    let late = json!({"id": "during", "schedule": {"after": "1h"}, "routing_key": "k"});
    let asked_at = Instant::now();
    let response = create(&stack, &key, &late).await?;
    let answered_in = asked_at.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await?["type"],
        "/problems/unavailable"
    );
    assert!(
        answered_in < UNAVAILABLE_WITHIN,
        "a 503 took {answered_in:?}"
    );
    tokio::time::sleep_until(due_at + CUT_PAST_DUE).await;
    assert!(
        consumer.collect_for(Duration::ZERO).await.is_empty(),
        "a timer fired while the database was cut"
    );
    proxy.restore();
    let restored_at = Instant::now();

    let recovered_in = loop {
        let status = create(&stack, &key, &late).await?.status();
        if status.is_success() {
            break restored_at.elapsed();
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            restored_at.elapsed() < RECOVERED_WITHIN,
            "the api still answers 503 {:?} after the database came back",
            restored_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut deliveries = Deliveries::default();
    deliveries
        .receive(&mut consumer, &seeded, RECEIVE_LIMIT)
        .await;
    let repeated = deliveries.assert_promises(&seeded);
    eprintln!(
        "503 in {answered_in:?}; 2xx again {recovered_in:?} after the restore; \
         {TIMERS} timers fired after the cut, {repeated} repeated deliveries"
    );
    let timers = i64::try_from(TIMERS)?;
    assert_eq!(
        settled(&stack, TIMERS, Duration::from_secs(15)).await?,
        (timers, timers)
    );

    drop(proxy);
    stack.shutdown().await
}
