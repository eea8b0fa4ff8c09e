//! The life of a single timer over HTTP, without a worker: create-or-replace with `PUT` and
//! its preconditions, pause, resume and trigger, against the real api and PostgreSQL. What
//! the worker then does with those timers is in `lifecycle_*.rs`.

use anyhow::Result;
use clockworks_tests::Stack;
use clockworks_tests::seed::database_now;
use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// How many `PUT`s of one id race in the concurrency tests.
const CONCURRENT_PUTS: usize = 16;

/// A stack with an api and no worker, and a key that may read and write.
struct Api {
    stack: Stack,
    key: String,
}

impl Api {
    async fn start() -> Result<Api> {
        let stack = Stack::start(0).await?;
        let key = stack
            .create_key("acme", &["timers:read", "timers:write"])
            .await?;
        Ok(Api { stack, key })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.stack
            .http
            .request(method, self.stack.url(path))
            .bearer_auth(&self.key)
    }

    async fn put(&self, id: &str, timer: &Value, headers: &[(&str, &str)]) -> Result<Response> {
        let mut request = self
            .request(reqwest::Method::PUT, &format!("/v1/timers/{id}"))
            .json(timer);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(request.send().await?)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Response> {
        Ok(self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await?)
    }

    async fn act(&self, id: &str, action: &str) -> Result<Response> {
        let path = format!("/v1/timers/{id}/{action}");
        Ok(self.request(reqwest::Method::POST, &path).send().await?)
    }

    async fn get(&self, id: &str) -> Result<Value> {
        let path = format!("/v1/timers/{id}");
        let response = self.request(reqwest::Method::GET, &path).send().await?;
        assert_eq!(response.status(), StatusCode::OK);
        Ok(response.json().await?)
    }

    async fn sql(&self, statement: &str, id: &str) -> Result<u64> {
        let client = self.stack.db.client().await?;
        Ok(client.execute(statement, &[&id]).await?)
    }

    async fn uid(&self, id: &str) -> Result<Uuid> {
        let client = self.stack.db.client().await?;
        let row = client
            .query_one("select uid from timers where id = $1", &[&id])
            .await?;
        Ok(row.get(0))
    }

    async fn database_now(&self) -> Result<Timestamp> {
        database_now(&self.stack.db.client().await?).await
    }

    async fn shutdown(self) -> Result<()> {
        self.stack.shutdown().await
    }
}

fn instant(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not an instant"))
}

fn every_second(on_missed: &str) -> Value {
    json!({"schedule": {"every": "1s", "on_missed": on_missed}, "routing_key": "k"})
}

/// Checks that `response` is a problem of `status` and `problem_type`, and returns it.
async fn expect_problem(
    response: Response,
    status: StatusCode,
    problem_type: &str,
) -> Result<Value> {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], problem_type, "{problem}");
    Ok(problem)
}

fn invalid_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_put_of_a_new_id_creates_the_timer_and_a_second_put_replaces_it() -> Result<()> {
    let api = Api::start().await?;
    let first = json!({"group": "orders", "schedule": {"after": "1h"}, "routing_key": "k",
                       "expire_after": "PT30S"});

    let created = api.put("t1", &first, &[]).await?;

    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["location"], "/v1/timers/t1");
    assert_eq!(created.headers()["etag"], "\"1\"");
    let created: Value = created.json().await?;
    assert_eq!(created["id"], "t1");
    assert_eq!(created["expire_after"], "30s");
    let uid = api.uid("t1").await?;
    api.sql("update timers set fire_count = 7 where id = $1", "t1")
        .await?;

    let second = json!({"id": "t1", "schedule": {"every": "1m"}, "routing_key": "k2",
                        "payload": {"n": 2}});
    let replaced = api.put("t1", &second, &[]).await?;

    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(replaced.headers()["etag"], "\"2\"");
    assert!(replaced.headers().get("location").is_none());
    let replaced: Value = replaced.json().await?;
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["group"], Value::Null);
    assert_eq!(replaced["routing_key"], "k2");
    assert_eq!(replaced["payload"], json!({"n": 2}));
    assert_eq!(replaced["expire_after"], Value::Null);
    assert_eq!(replaced["fire_count"], 7);
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(
        instant(&replaced["next_fire_at"]).duration_since(instant(&replaced["updated_at"])),
        SignedDuration::from_mins(1)
    );
    assert_eq!(api.uid("t1").await?, uid);
    assert_eq!(api.get("t1").await?, replaced);
    api.shutdown().await
}

#[tokio::test]
async fn a_put_whose_body_names_another_id_is_refused_on_the_id_field() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"id": "other", "schedule": {"after": "1h"}, "routing_key": "k"});

    let response = api.put("t1", &timer, &[]).await?;

    let problem = expect_problem(response, StatusCode::BAD_REQUEST, "/problems/validation").await?;
    assert_eq!(invalid_fields(&problem), ["id"]);
    let read_only = json!({"schedule": {"after": "1h"}, "routing_key": "k", "version": 3});
    let response = api.put("t1", &read_only, &[]).await?;
    let problem = expect_problem(response, StatusCode::BAD_REQUEST, "/problems/validation").await?;
    assert_eq!(invalid_fields(&problem), ["version"]);
    api.shutdown().await
}

#[tokio::test]
async fn a_put_with_a_stale_if_match_is_refused_and_changes_nothing() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});
    api.put("t1", &timer, &[]).await?;
    let current: Value = api.put("t1", &timer, &[]).await?.json().await?;
    assert_eq!(current["version"], 2);

    let changed = json!({"schedule": {"after": "2h"}, "routing_key": "k"});
    let stale = api.put("t1", &changed, &[("if-match", "\"1\"")]).await?;

    let problem = expect_problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "/problems/precondition-failed",
    )
    .await?;
    assert!(
        problem["detail"].as_str().unwrap().contains("version 2"),
        "{problem}"
    );
    assert_eq!(api.get("t1").await?, current);

    let fresh = api.put("t1", &changed, &[("if-match", "\"2\"")]).await?;
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(fresh.headers()["etag"], "\"3\"");
    api.shutdown().await
}

#[tokio::test]
async fn if_match_on_a_missing_timer_and_if_none_match_on_an_existing_one_fail() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});

    let missing = api.put("t1", &timer, &[("if-match", "*")]).await?;
    expect_problem(
        missing,
        StatusCode::PRECONDITION_FAILED,
        "/problems/precondition-failed",
    )
    .await?;
    let client = api.stack.db.client().await?;
    let count: i64 = client
        .query_one("select count(*) from timers", &[])
        .await?
        .get(0);
    assert_eq!(count, 0);

    let created = api.put("t1", &timer, &[("if-none-match", "*")]).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await?;

    let again = api.put("t1", &timer, &[("if-none-match", "*")]).await?;
    expect_problem(
        again,
        StatusCode::PRECONDITION_FAILED,
        "/problems/precondition-failed",
    )
    .await?;
    assert_eq!(api.get("t1").await?, created);
    api.shutdown().await
}

#[tokio::test]
async fn concurrent_puts_of_one_id_each_get_their_own_version() -> Result<()> {
    let api = Api::start().await?;
    let timers: Vec<Value> = (0..CONCURRENT_PUTS)
        .map(|n| json!({"schedule": {"after": "1h"}, "routing_key": "k", "payload": n}))
        .collect();

    let responses = join_all(timers.iter().map(|timer| api.put("same", timer, &[]))).await;

    let mut created = 0;
    let mut versions = Vec::new();
    for response in responses {
        let response = response?;
        created += usize::from(response.status() == StatusCode::CREATED);
        let body: Value = response.json().await?;
        versions.push(body["version"].as_i64().expect("a version"));
    }
    versions.sort_unstable();
    let expected: Vec<i64> = (1..=CONCURRENT_PUTS as i64).collect();
    assert_eq!(created, 1);
    assert_eq!(versions, expected);
    assert_eq!(api.get("same").await?["version"], CONCURRENT_PUTS);
    api.shutdown().await
}

#[tokio::test]
async fn of_concurrent_puts_with_the_same_if_match_exactly_one_wins() -> Result<()> {
    let api = Api::start().await?;
    api.put("same", &every_second("skip"), &[]).await?;
    let timers: Vec<Value> = (0..CONCURRENT_PUTS)
        .map(|n| json!({"schedule": {"after": "1h"}, "routing_key": "k", "payload": n}))
        .collect();

    let responses = join_all(
        timers
            .iter()
            .map(|timer| api.put("same", timer, &[("if-match", "\"1\"")])),
    )
    .await;

    let mut statuses = Vec::new();
    for response in responses {
        statuses.push(response?.status());
    }
    let won = statuses
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    let lost = statuses
        .iter()
        .filter(|status| **status == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, lost), (1, CONCURRENT_PUTS - 1), "{statuses:?}");
    assert_eq!(api.get("same").await?["version"], 2);
    api.shutdown().await
}

#[tokio::test]
async fn a_replaced_paused_timer_stays_paused_and_a_finished_one_lives_again() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});
    api.put("paused", &timer, &[]).await?;
    api.act("paused", "pause").await?;
    api.put("completed", &timer, &[]).await?;
    api.sql(
        "update timers set state = 'completed', next_fire_at = null, fire_count = 1
         where id = $1",
        "completed",
    )
    .await?;
    api.put("failed", &timer, &[]).await?;
    api.sql(
        "update timers set state = 'failed', next_fire_at = null, failure_reason = 'broken'
         where id = $1",
        "failed",
    )
    .await?;

    let replacement = json!({"schedule": {"after": "2h"}, "routing_key": "k"});
    let paused: Value = api.put("paused", &replacement, &[]).await?.json().await?;
    let completed: Value = api
        .put("completed", &replacement, &[])
        .await?
        .json()
        .await?;
    let failed: Value = api.put("failed", &replacement, &[]).await?.json().await?;

    assert_eq!(paused["state"], "paused");
    assert_eq!(completed["state"], "scheduled");
    assert_eq!(completed["fire_count"], 1);
    assert_eq!(failed["state"], "scheduled");
    assert!(failed.get("failure_reason").is_none(), "{failed}");
    for timer in [&paused, &completed, &failed] {
        let next_fire_at = instant(&timer["next_fire_at"]);
        assert_eq!(
            next_fire_at.duration_since(instant(&timer["updated_at"])),
            SignedDuration::from_hours(2)
        );
    }
    api.shutdown().await
}

#[tokio::test]
async fn a_paused_timer_keeps_its_slot_and_pausing_again_changes_nothing() -> Result<()> {
    let api = Api::start().await?;
    let created: Value = api
        .put("t1", &every_second("fire_once"), &[])
        .await?
        .json()
        .await?;

    let paused = api.act("t1", "pause").await?;

    assert_eq!(paused.status(), StatusCode::OK);
    assert_eq!(paused.headers()["etag"], "\"2\"");
    let paused: Value = paused.json().await?;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["next_fire_at"], created["next_fire_at"]);

    let again = api.act("t1", "pause").await?;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["etag"], "\"2\"");
    assert_eq!(again.json::<Value>().await?, paused);
    api.shutdown().await
}

/// Pauses an `every: 1s` timer, moves the slot it waits for `missed_secs` seconds and a half
/// into the past, resumes it, and returns (the slot it waited for, the database's now
/// before the resume, the resumed timer).
async fn resume_after_missing(
    api: &Api,
    on_missed: &str,
    missed_secs: i64,
) -> Result<(Timestamp, Timestamp, Value)> {
    api.put(on_missed, &every_second(on_missed), &[]).await?;
    api.act(on_missed, "pause").await?;
    let client = api.stack.db.client().await?;
    let pending: Timestamp = client
        .query_one(
            "update timers
             set next_fire_at = date_trunc('second', now())
                                - make_interval(secs => $2::double precision + 0.5)
             where id = $1
             returning next_fire_at",
            &[&on_missed, &(missed_secs as f64)],
        )
        .await?
        .get(0);

    let before = api.database_now().await?;
    let resumed = api.act(on_missed, "resume").await?;
    assert_eq!(resumed.status(), StatusCode::OK);
    Ok((pending, before, resumed.json().await?))
}

#[tokio::test]
async fn a_resumed_timer_catches_up_by_its_missed_fire_policy() -> Result<()> {
    let api = Api::start().await?;
    let second = SignedDuration::from_secs(1);

    let (pending, before, fire_once) = resume_after_missing(&api, "fire_once", 10).await?;
    assert_eq!(fire_once["state"], "scheduled");
    let next = instant(&fire_once["next_fire_at"]);
    // The latest slot already due: at or before the resume, less than a step before it.
    assert!(next <= instant(&fire_once["updated_at"]));
    assert!(next > before - second);
    assert_eq!(next.duration_since(pending).subsec_nanos(), 0);

    let (pending, before, skip) = resume_after_missing(&api, "skip", 10).await?;
    let next = instant(&skip["next_fire_at"]);
    // The first slot still in the future: after the resume, at most a step after it.
    assert!(next > instant(&skip["updated_at"]));
    assert!(next <= before + second + second);
    assert_eq!(next.duration_since(pending).subsec_nanos(), 0);

    let (pending, _, fire_all) = resume_after_missing(&api, "fire_all", 10).await?;
    assert_eq!(instant(&fire_all["next_fire_at"]), pending);

    let again = api.act("fire_all", "resume").await?;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await?, fire_all);
    api.shutdown().await
}

#[tokio::test]
async fn finished_timers_cannot_be_paused_or_resumed() -> Result<()> {
    let api = Api::start().await?;
    api.put("done", &every_second("skip"), &[]).await?;
    api.sql(
        "update timers set state = 'completed', next_fire_at = null where id = $1",
        "done",
    )
    .await?;

    for action in ["pause", "resume"] {
        let response = api.act("done", action).await?;
        let problem =
            expect_problem(response, StatusCode::CONFLICT, "/problems/invalid-state").await?;
        assert!(
            problem["detail"].as_str().unwrap().contains("completed"),
            "{problem}"
        );
    }
    assert_eq!(api.get("done").await?["version"], 1);
    api.shutdown().await
}

#[tokio::test]
async fn actions_on_a_timer_that_does_not_exist_answer_an_empty_200() -> Result<()> {
    let api = Api::start().await?;

    for action in ["pause", "resume", "trigger"] {
        let response = api.act("nothing-here", action).await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await?.len(), 0);
    }
    api.shutdown().await
}

#[tokio::test]
async fn a_trigger_makes_the_timer_due_now_and_keeps_its_own_slot() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"schedule": {"after": "1h"}, "routing_key": "k"});
    let created: Value = api.put("t1", &timer, &[]).await?.json().await?;
    api.act("t1", "pause").await?;

    let before = api.database_now().await?;
    let triggered = api.act("t1", "trigger").await?;

    assert_eq!(triggered.status(), StatusCode::OK);
    assert_eq!(triggered.headers()["etag"], "\"3\"");
    let triggered: Value = triggered.json().await?;
    assert_eq!(triggered["state"], "paused");
    assert_eq!(triggered["next_fire_at"], created["next_fire_at"]);
    let triggered_at = instant(&triggered["triggered_at"]);
    assert!(triggered_at >= before);

    // The row is due at the trigger instant, with the timer's own state and slot set aside.
    let client = api.stack.db.client().await?;
    let row = client
        .query_one(
            "select state, next_fire_at, deferred_state, deferred_next_fire_at
             from timers
             where id = 't1'",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, &str>(0), "scheduled");
    assert_eq!(row.get::<_, Timestamp>(1), triggered_at);
    assert_eq!(row.get::<_, &str>(2), "paused");
    assert_eq!(
        row.get::<_, Timestamp>(3),
        instant(&created["next_fire_at"])
    );

    let again = api.act("t1", "trigger").await?;
    assert_eq!(again.json::<Value>().await?, triggered);
    let resumed: Value = api.act("t1", "resume").await?.json().await?;
    assert_eq!(resumed["state"], "scheduled");
    assert_eq!(resumed["triggered_at"], triggered["triggered_at"]);
    api.shutdown().await
}

#[tokio::test]
async fn a_failed_timer_cannot_be_triggered() -> Result<()> {
    let api = Api::start().await?;
    api.put("t1", &every_second("skip"), &[]).await?;
    api.sql(
        "update timers set state = 'failed', next_fire_at = null where id = $1",
        "t1",
    )
    .await?;

    let response = api.act("t1", "trigger").await?;

    expect_problem(response, StatusCode::CONFLICT, "/problems/invalid-state").await?;
    api.shutdown().await
}

#[tokio::test]
async fn expire_after_is_part_of_the_definition_a_retried_create_compares() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k",
                       "expire_after": "1m"});
    let created = api.post("/v1/timers", &timer).await?;
    assert_eq!(created.status(), StatusCode::CREATED);

    let same = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k",
                      "expire_after": 60_000});
    assert_eq!(
        api.post("/v1/timers", &same).await?.status(),
        StatusCode::OK
    );
    let other = json!({"id": "t1", "schedule": {"after": "1h"}, "routing_key": "k",
                       "expire_after": "2m"});
    let conflict = api.post("/v1/timers", &other).await?;
    expect_problem(conflict, StatusCode::CONFLICT, "/problems/conflict").await?;

    let too_short = json!({"schedule": {"after": "1h"}, "routing_key": "k",
                           "expire_after": "10ms"});
    let response = api.post("/v1/timers", &too_short).await?;
    let problem = expect_problem(response, StatusCode::BAD_REQUEST, "/problems/validation").await?;
    assert_eq!(invalid_fields(&problem), ["expire_after"]);
    api.shutdown().await
}

#[tokio::test]
async fn a_read_only_key_cannot_replace_pause_resume_or_trigger() -> Result<()> {
    let api = Api::start().await?;
    api.put("t1", &every_second("skip"), &[]).await?;
    let reader = api.stack.create_key("acme", &["timers:read"]).await?;
    let http = &api.stack.http;

    let put = http
        .put(api.stack.url("/v1/timers/t1"))
        .bearer_auth(&reader)
        .json(&every_second("fire_all"))
        .send()
        .await?;
    expect_problem(put, StatusCode::FORBIDDEN, "/problems/forbidden").await?;
    for action in ["pause", "resume", "trigger"] {
        let response = http
            .post(api.stack.url(&format!("/v1/timers/t1/{action}")))
            .bearer_auth(&reader)
            .send()
            .await?;
        expect_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await?;
    }
    assert_eq!(api.get("t1").await?["version"], 1);
    api.shutdown().await
}
