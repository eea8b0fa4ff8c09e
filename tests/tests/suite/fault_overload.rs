//! The api overloaded or failing unexpectedly: requests beyond `CLOCKWORKS_API_MAX_IN_FLIGHT`
//! are shed with 503 and `Retry-After: 1` while the database stalls, none is answered 500 and
//! none hangs; and an unexpected failure is a 500 whose body names no internal detail.

use crate::fault_support;

use std::time::Duration;

use anyhow::Result;
use clockworks_tests::proxy::url_through;
use clockworks_tests::{Api, Proxy, Stack};
use fault_support::upstream;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

const MAX_IN_FLIGHT: &str = "2";
const CONCURRENT_REQUESTS: usize = 20;
/// Generous bound on how long any answer may take: a hung request shows as far longer.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
const SCOPES: [&str; 2] = ["timers:read", "timers:write"];

/// The `n`th request of a mix that touches every kind of route, with its method and path.
fn mixed_request(n: usize) -> (Method, String, Option<Value>) {
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});
    match n % 6 {
        0 => (Method::POST, "/v1/timers".to_owned(), Some(timer)),
        1 => (Method::GET, "/v1/timers/known".to_owned(), None),
        2 => (Method::GET, "/v1/timers?limit=5".to_owned(), None),
        3 => (Method::PUT, format!("/v1/timers/put-{n}"), Some(timer)),
        4 => (Method::DELETE, format!("/v1/timers/gone-{n}"), None),
        _ => (Method::GET, "/healthz".to_owned(), None),
    }
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_on_a_stalled_database_get_503_never_500() -> Result<()>
{
    let mut stack = Stack::new().await?;
    let proxy = Proxy::start(upstream(&stack.db.url).await?).await?;
    let through = url_through(&stack.db.url, &proxy);
    stack.api =
        Some(Api::spawn(&through, &[("CLOCKWORKS_API_MAX_IN_FLIGHT", MAX_IN_FLIGHT)]).await?);
    let key = stack.create_key("acme", &SCOPES).await?;
    let known = json!({"id": "known", "schedule": {"after": "1h"}, "routing_key": "k"});
    let created = stack
        .http
        .post(stack.url("/v1/timers"))
        .bearer_auth(&key)
        .json(&known)
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::CREATED);

    proxy.stall();
    let sent_at = Instant::now();
    let requests = (0..CONCURRENT_REQUESTS).map(|n| {
        let (method, path, body) = mixed_request(n);
        let mut request = stack
            .http
            .request(method.clone(), stack.url(&path))
            .bearer_auth(&key)
            .timeout(ANSWER_WITHIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await;
            (format!("{method} {path}"), response)
        }
    });
    let answers = join_all(requests).await;
    let all_answered_in = sent_at.elapsed();

    let mut shed = 0;
    for (request, response) in answers {
        let response = response.map_err(|err| anyhow::anyhow!("{request}: no answer: {err}"))?;
        let status = response.status();
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status.is_success(),
            "{request} was answered {status}"
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            shed += 1;
            assert_eq!(response.headers()["retry-after"], "1", "{request}");
            let problem: Value = response.json().await?;
            assert_eq!(problem["type"], "/problems/unavailable", "{request}");
        }
    }
    assert!(
        shed >= CONCURRENT_REQUESTS - 2 - CONCURRENT_REQUESTS / 6,
        "only {shed} requests were shed"
    );
    eprintln!("{shed} of {CONCURRENT_REQUESTS} answered 503 within {all_answered_in:?}");

    proxy.restore();
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let response = stack
            .http
            .get(stack.url("/v1/timers/known"))
            .bearer_auth(&key)
            .send()
            .await?;
        let status = response.status();
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::OK {
            assert_eq!(response.json::<Value>().await?["id"], "known");
            break;
        }
        assert!(Instant::now() < deadline, "the api did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    drop(proxy);
    stack.shutdown().await
}

#[tokio::test]
async fn an_unexpected_failure_is_a_500_whose_body_names_no_internal_detail() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &SCOPES).await?;
    let client = stack.db.client().await?;
    let marker = "corrupt-marker-7c1e";
    // A paused timer whose schedule was written behind the api's back: resuming it needs the
    // schedule, which cannot be read.
    client
        .execute(
            "insert into timers (namespace, id, uid, schedule, routing_key, payload, state,
                                 next_fire_at)
             values ('acme', 'corrupt', gen_random_uuid(), $1, 'k', 'null', 'paused', now())",
            &[&json!({"at": marker})],
        )
        .await?;

    let response = stack
        .http
        .post(stack.url("/v1/timers/corrupt/resume"))
        .bearer_auth(&key)
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = response.text().await?;
    let problem: Value = serde_json::from_str(&body)?;
    assert_eq!(problem["type"], "/problems/internal");
    assert_eq!(problem["detail"], "an unexpected error occurred");
    for internal in [marker, "corrupt", "schedule", "stored", "timers"] {
        assert!(
            !body.contains(internal),
            "the body names {internal:?}: {body}"
        );
    }
    let log = stack.api().process.log()?;
    assert!(
        log.contains("request failed") && log.contains("corrupt"),
        "the cause was not logged: {log}"
    );

    stack.shutdown().await
}
