//! Reading timers in bulk over HTTP, against the real api and PostgreSQL: the paginated
//! list and its filters, a timer's fire history, and schedule previews.

use std::collections::BTreeSet;

use anyhow::Result;
use clockworks_tests::Stack;
use jiff::Timestamp;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

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

    async fn get(&self, path_and_query: &str) -> Result<Response> {
        Ok(self
            .stack
            .http
            .get(self.stack.url(path_and_query))
            .bearer_auth(&self.key)
            .send()
            .await?)
    }

    async fn get_json(&self, path_and_query: &str) -> Result<Value> {
        let response = self.get(path_and_query).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
        Ok(response.json().await?)
    }

    async fn create(&self, id: &str, group: Option<&str>) -> Result<()> {
        let timer = json!({"id": id, "group": group, "schedule": {"after": "1h"},
                           "routing_key": "k"});
        let response = self
            .stack
            .http
            .post(self.stack.url("/v1/timers"))
            .bearer_auth(&self.key)
            .json(&timer)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::CREATED);
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.stack
            .http
            .delete(self.stack.url(&format!("/v1/timers/{id}")))
            .bearer_auth(&self.key)
            .send()
            .await?;
        Ok(())
    }

    async fn shutdown(self) -> Result<()> {
        self.stack.shutdown().await
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["timers"]
        .as_array()
        .expect("a page lists timers")
        .iter()
        .map(|timer| timer["id"].as_str().expect("an id").to_owned())
        .collect()
}

async fn refused_fields(response: Response) -> Result<Vec<String>> {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/validation");
    Ok(problem["errors"]
        .as_array()
        .expect("named errors")
        .iter()
        .map(|error| error["field"].as_str().unwrap_or_default().to_owned())
        .collect())
}

#[tokio::test]
async fn pages_never_skip_or_repeat_a_timer_while_others_come_and_go() -> Result<()> {
    let api = Api::start().await?;
    let lasting: Vec<String> = (0..25).map(|n| format!("t{n:02}")).collect();
    for id in &lasting {
        api.create(id, None).await?;
    }
    for id in ["t05x", "t15x", "t24x"] {
        api.create(id, None).await?;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/timers?limit=10&cursor={cursor}"),
            None => "/v1/timers?limit=10".to_owned(),
        };
        let page = api.get_json(&path).await?;
        seen.extend(ids(&page));
        pages += 1;

        // Between pages: timers before and after the cursor are created and deleted.
        api.create(&format!("a-new-{pages}"), None).await?;
        api.create(&format!("z-new-{pages}"), None).await?;
        api.delete(&format!("t{:02}x", pages * 10 - 5)).await?;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the pages never ended");
    }

    let lasting_seen: Vec<&String> = seen.iter().filter(|id| lasting.contains(id)).collect();
    assert_eq!(lasting_seen, lasting.iter().collect::<Vec<_>>());
    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a timer was listed twice: {seen:?}"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages are in id order");
    api.shutdown().await
}

#[tokio::test]
async fn a_listing_filters_by_group_and_state_and_defaults_to_a_hundred() -> Result<()> {
    let api = Api::start().await?;
    for n in 0..105 {
        api.create(&format!("t{n:03}"), (n % 2 == 0).then_some("even"))
            .await?;
    }
    api.stack
        .http
        .post(api.stack.url("/v1/timers/t000/pause"))
        .bearer_auth(&api.key)
        .send()
        .await?;

    let first = api.get_json("/v1/timers").await?;
    assert_eq!(ids(&first).len(), 100);
    assert!(first["next_cursor"].is_string());

    let even = api.get_json("/v1/timers?group=even&limit=1000").await?;
    assert_eq!(ids(&even).len(), 53);
    assert_eq!(even["next_cursor"], Value::Null);
    let paused = api.get_json("/v1/timers?state=paused").await?;
    assert_eq!(ids(&paused), ["t000"]);
    assert_eq!(paused["timers"][0]["state"], "paused");
    let odd_paused = api.get_json("/v1/timers?state=paused&group=odd").await?;
    assert!(ids(&odd_paused).is_empty());

    let other = api.stack.create_key("other", &["timers:read"]).await?;
    let theirs: Value = api
        .stack
        .http
        .get(api.stack.url("/v1/timers"))
        .bearer_auth(&other)
        .send()
        .await?
        .json()
        .await?;
    assert!(ids(&theirs).is_empty(), "another namespace sees {theirs}");
    api.shutdown().await
}

#[tokio::test]
async fn bad_list_parameters_are_refused_by_name() -> Result<()> {
    let api = Api::start().await?;

    let cases = [
        ("/v1/timers?state=sleeping", vec!["state"]),
        ("/v1/timers?cursor=not-a-cursor", vec!["cursor"]),
        ("/v1/timers?limit=1001", vec!["limit"]),
        ("/v1/timers?limit=0", vec!["limit"]),
        ("/v1/timers?stat=paused", vec!["stat"]),
        ("/v1/timers?state=paused&state=failed", vec!["state"]),
        ("/v1/timers?limit=x&state=x", vec!["state", "limit"]),
    ];
    for (path, fields) in cases {
        let mut refused = refused_fields(api.get(path).await?).await?;
        refused.sort();
        let mut fields = fields;
        fields.sort();
        assert_eq!(refused, fields, "{path}");
    }
    api.shutdown().await
}

/// Records a fire of the timer incarnation `uid` straight into the `fires` table.
async fn record_fire(
    client: &tokio_postgres::Client,
    uid: Uuid,
    fire_seq: i64,
    scheduled_at: &str,
    late_ms: i64,
    outcome: &str,
) -> Result<()> {
    let scheduled_at: Timestamp = scheduled_at.parse()?;
    let fired_at = Timestamp::from_millisecond(scheduled_at.as_millisecond() + late_ms)?;
    client
        .execute(
            "insert into fires (timer_uid, fire_seq, namespace, timer_id, scheduled_at,
                                fired_at, outcome)
             values ($1, $2, 'acme', 't1', $3, $4, $5)",
            &[&uid, &fire_seq, &scheduled_at, &fired_at, &outcome],
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_fire_history_lists_the_current_incarnation_newest_first() -> Result<()> {
    let api = Api::start().await?;
    api.create("t1", None).await?;
    let client = api.stack.db.client().await?;
    let uid: Uuid = client
        .query_one("select uid from timers where id = 't1'", &[])
        .await?
        .get(0);
    record_fire(&client, uid, 1, "2027-01-01T00:00:00Z", 12, "delivered").await?;
    record_fire(&client, uid, 2, "2027-01-01T00:00:01Z", 3, "delivered").await?;
    record_fire(&client, uid, 3, "2027-01-01T00:00:02Z", 90_000, "expired").await?;
    let earlier_incarnation = Uuid::now_v7();
    record_fire(
        &client,
        earlier_incarnation,
        9,
        "2026-01-01T00:00:00Z",
        1,
        "delivered",
    )
    .await?;

    let history = api.get_json("/v1/timers/t1/fires").await?;

    assert_eq!(
        history,
        json!({"fires": [
            {"fire_seq": 3, "scheduled_at": "2027-01-01T00:00:02Z",
             "fired_at": "2027-01-01T00:01:32Z", "lateness_ms": 90_000, "outcome": "expired"},
            {"fire_seq": 2, "scheduled_at": "2027-01-01T00:00:01Z",
             "fired_at": "2027-01-01T00:00:01.003Z", "lateness_ms": 3, "outcome": "delivered"},
            {"fire_seq": 1, "scheduled_at": "2027-01-01T00:00:00Z",
             "fired_at": "2027-01-01T00:00:00.012Z", "lateness_ms": 12,
             "outcome": "delivered"},
        ]})
    );
    let latest = api.get_json("/v1/timers/t1/fires?limit=1").await?;
    assert_eq!(latest["fires"].as_array().unwrap().len(), 1);
    assert_eq!(latest["fires"][0]["fire_seq"], 3);

    let missing = api.get("/v1/timers/nothing-here/fires").await?;
    assert_eq!(missing.status(), StatusCode::OK);
    assert_eq!(missing.bytes().await?.len(), 0);
    let refused = refused_fields(api.get("/v1/timers/t1/fires?limit=5000").await?).await?;
    assert_eq!(refused, ["limit"]);
    api.shutdown().await
}

#[tokio::test]
async fn a_stored_cron_timer_previews_its_fires_across_a_spring_forward_gap() -> Result<()> {
    let api = Api::start().await?;
    let timer = json!({"id": "nightly", "routing_key": "k",
                       "schedule": {"cron": "30 2 * * *", "timezone": "America/New_York",
                                    "start_at": "2027-03-13T12:00:00Z"}});
    let response = api
        .stack
        .http
        .post(api.stack.url("/v1/timers"))
        .bearer_auth(&api.key)
        .json(&timer)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);

    let preview = api.get_json("/v1/timers/nightly/preview?count=3").await?;

    assert_eq!(
        preview,
        json!({"next_fires": ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z",
                              "2027-03-16T06:30:00Z"]})
    );
    let default = api.get_json("/v1/timers/nightly/preview").await?;
    assert_eq!(default["next_fires"].as_array().unwrap().len(), 10);
    let missing = api.get("/v1/timers/nothing-here/preview").await?;
    assert_eq!(missing.status(), StatusCode::OK);
    assert_eq!(missing.bytes().await?.len(), 0);
    let refused = refused_fields(api.get("/v1/timers/nightly/preview?count=1001").await?).await?;
    assert_eq!(refused, ["count"]);
    api.shutdown().await
}

#[tokio::test]
async fn a_schedule_not_stored_yet_previews_with_a_read_only_key() -> Result<()> {
    let api = Api::start().await?;
    let reader = api.stack.create_key("acme", &["timers:read"]).await?;
    let preview = |body: Value| {
        api.stack
            .http
            .post(api.stack.url("/v1/schedules/preview"))
            .bearer_auth(&reader)
            .json(&body)
            .send()
    };

    let response = preview(json!({
        "schedule": {"cron": "30 2 * * *", "timezone": "America/New_York"},
        "count": 2,
        "after": "2027-03-13T08:00:00Z"
    }))
    .await?;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({"next_fires": ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]})
    );

    let now_on = preview(json!({"schedule": {"every": "1m"}})).await?;
    let now_on: Value = now_on.json().await?;
    assert_eq!(now_on["next_fires"].as_array().unwrap().len(), 10);

    let refused =
        refused_fields(preview(json!({"schedule": {"cron": "61 * * * *"}, "count": 1001})).await?)
            .await?;
    let mut refused = refused;
    refused.sort();
    assert_eq!(refused, ["count", "schedule.cron"]);
    api.shutdown().await
}
