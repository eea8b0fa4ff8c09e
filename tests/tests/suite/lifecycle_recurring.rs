//! Recurring timers end to end, through the real api, worker, PostgreSQL and RabbitMQ: an
//! `every: 1s` timer on its grid, paused and resumed, replaced while it fires, and completed
//! by `max_fires` or `end_at`.

use crate::lifecycle_support;

use std::time::Duration;

use anyhow::Result;
use clockworks_tests::Fired;
use jiff::Timestamp;
use lifecycle_support::{
    Lifecycle, PERIOD, assert_none_early, fire_seq, instant, of_timer, summary,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Long enough for a fire claimed before a pause or stop to reach the consumer.
const DRAIN: Duration = Duration::from_millis(800);
/// Longer than two periods: a paused or completed timer stays silent this long.
const QUIET: Duration = Duration::from_millis(2_500);

fn every_second(extra: Value) -> Value {
    let mut schedule = json!({"every": "1s"});
    if let (Some(schedule), Value::Object(extra)) = (schedule.as_object_mut(), extra) {
        schedule.extend(extra);
    }
    json!({"schedule": schedule, "routing_key": "tick"})
}

fn scheduled(fired: &[Fired]) -> Vec<Timestamp> {
    fired.iter().map(Fired::scheduled_at).collect()
}

fn seqs(fired: &[Fired]) -> Vec<i64> {
    fired.iter().map(fire_seq).collect()
}

/// `count` slots one period apart from `first`.
fn grid(first: Timestamp, count: i32) -> Vec<Timestamp> {
    (0..count).map(|k| first + PERIOD * k).collect()
}

#[tokio::test]
async fn an_every_second_timer_fires_on_its_grid_with_consecutive_sequence_numbers() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    let created = life.put("ticker", &every_second(json!({}))).await?;
    let first_slot = instant(&created, "next_fire_at")?;

    let fired = life.next_fires(4).await?;

    assert_eq!(seqs(&fired), [1, 2, 3, 4]);
    assert_eq!(scheduled(&fired), grid(first_slot, 4));
    assert_none_early(&fired);
    for event in &fired {
        assert_eq!(event.routing_key, "acme.tick");
        let fired_at: Timestamp = event.body["fired_at"].as_str().unwrap().parse()?;
        assert!(fired_at >= event.scheduled_at(), "{:?}", summary(&fired));
    }
    life.shutdown().await
}

#[tokio::test]
async fn a_paused_timer_stays_silent_and_a_resumed_one_fires_once_for_what_it_missed() -> Result<()>
{
    let mut life = Lifecycle::start().await?;
    life.put("ticker", &every_second(json!({"on_missed": "fire_once"})))
        .await?;
    let mut before = life.next_fires(2).await?;

    let paused = life.act("ticker", "pause").await?;
    // A fire claimed before the pause is recorded before it, and may still be on its way.
    before.extend(life.fired_within(DRAIN).await);
    let last = before.last().expect("fires before the pause");
    let pending = instant(&paused, "next_fire_at")?;
    assert_eq!(paused["state"], "paused");
    assert!(pending > last.scheduled_at());
    assert_eq!(
        pending.duration_since(last.scheduled_at()).subsec_nanos(),
        0
    );

    let silent = life.fired_within(QUIET).await;
    assert!(
        silent.is_empty(),
        "fired while paused: {:?}",
        summary(&silent)
    );

    let resumed = life.act("ticker", "resume").await?;
    let caught_up = instant(&resumed, "next_fire_at")?;
    let resumed_at = instant(&resumed, "updated_at")?;
    // fire_once: the latest slot already due, on the grid of the slot it waited for.
    assert!(caught_up <= resumed_at && caught_up > resumed_at - PERIOD);
    assert!(
        caught_up - PERIOD * 2 >= pending,
        "the pause was {QUIET:?} long"
    );
    assert_eq!(caught_up.duration_since(pending).subsec_nanos(), 0);

    let after = life.next_fires(3).await?;
    let last_seq = fire_seq(last);
    assert_eq!(seqs(&after), [last_seq + 1, last_seq + 2, last_seq + 3]);
    assert_eq!(scheduled(&after), grid(caught_up, 3));
    assert_none_early(&after);
    life.shutdown().await
}

/// `PUT`s `timer` as `ticker` with one precondition header; returns the status and body.
async fn put_ticker(
    life: &Lifecycle,
    timer: &Value,
    precondition: (&str, &str),
) -> Result<(StatusCode, Value)> {
    let response = life
        .stack
        .http
        .request(Method::PUT, life.stack.url("/v1/timers/ticker"))
        .bearer_auth(&life.key)
        .header(precondition.0, precondition.1)
        .json(timer)
        .send()
        .await?;
    Ok((response.status(), response.json().await?))
}

#[tokio::test]
async fn a_replaced_timer_goes_on_with_its_sequence_and_stale_preconditions_change_nothing()
-> Result<()> {
    let mut life = Lifecycle::start().await?;
    life.put("ticker", &every_second(json!({}))).await?;
    let mut fired = life.next_fires(2).await?;
    let mut replacement = every_second(json!({}));
    replacement["payload"] = json!({"v": 2});

    let (status, replaced) = put_ticker(&life, &replacement, ("if-match", "\"1\"")).await?;
    assert_eq!(status, StatusCode::OK);
    let (stale, _) = put_ticker(&life, &replacement, ("if-match", "\"1\"")).await?;
    let (existing, _) = put_ticker(&life, &replacement, ("if-none-match", "*")).await?;
    assert_eq!(stale, StatusCode::PRECONDITION_FAILED);
    assert_eq!(existing, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        life.get("/v1/timers/ticker").await?["version"],
        replaced["version"]
    );

    // A fire claimed before the replace is recorded before it, with the old payload.
    fired.extend(life.fired_within(DRAIN + QUIET).await);
    let (old, new): (Vec<Fired>, Vec<Fired>) = fired
        .into_iter()
        .partition(|event| event.body["payload"] != json!({"v": 2}));
    let last_old_seq = fire_seq(old.last().expect("fires before the replace"));
    let first_new_slot = instant(&replaced, "next_fire_at")?;
    let count = i32::try_from(new.len())?;
    assert!(count >= 2, "{:?}", summary(&new));
    let expected_seqs: Vec<i64> = (1..=i64::from(count)).map(|k| last_old_seq + k).collect();
    assert_eq!(seqs(&new), expected_seqs);
    assert_eq!(scheduled(&new), grid(first_new_slot, count));
    assert_none_early(&new);
    for event in &new {
        assert!(
            old.iter()
                .all(|earlier| earlier.message_id != event.message_id),
            "a message id was used again"
        );
    }
    life.shutdown().await
}

#[tokio::test]
async fn max_fires_completes_a_timer_after_exactly_that_many_fires_and_the_history_lists_them()
-> Result<()> {
    let mut life = Lifecycle::start().await?;
    life.put("thrice", &every_second(json!({"max_fires": 3})))
        .await?;

    let fired = life.next_fires(3).await?;
    let more = life.fired_within(QUIET).await;

    assert_eq!(seqs(&fired), [1, 2, 3]);
    assert!(
        more.is_empty(),
        "fired past max_fires: {:?}",
        summary(&more)
    );
    let timer = life.get("/v1/timers/thrice").await?;
    assert_eq!(timer["state"], "completed");
    assert_eq!(timer["fire_count"], 3);
    assert_eq!(timer["next_fire_at"], Value::Null);

    let history = life.get("/v1/timers/thrice/fires").await?;
    let history = history["fires"].as_array().expect("a fire list");
    let listed: Vec<(i64, Timestamp)> = history
        .iter()
        .map(|fire| {
            let seq = fire["fire_seq"].as_i64().unwrap();
            (seq, fire["scheduled_at"].as_str().unwrap().parse().unwrap())
        })
        .collect();
    let expected: Vec<(i64, Timestamp)> = fired
        .iter()
        .rev()
        .map(|event| (fire_seq(event), event.scheduled_at()))
        .collect();
    assert_eq!(listed, expected);
    for fire in history {
        assert_eq!(fire["outcome"], "delivered");
        assert!(fire["lateness_ms"].as_i64().unwrap() >= 0);
    }
    life.shutdown().await
}

#[tokio::test]
async fn end_at_completes_a_timer_after_its_last_slot() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    let now = life.database_now().await?;
    let start_at = Timestamp::from_second(now.as_second() + 2)?;
    let end_at = start_at + PERIOD * 2;
    let bounds = json!({"start_at": start_at.to_string(), "end_at": end_at.to_string()});
    life.put("bounded", &every_second(bounds)).await?;

    let fired = life.next_fires(3).await?;
    let more = life.fired_within(QUIET).await;

    assert_eq!(scheduled(&fired), grid(start_at, 3));
    assert_none_early(&fired);
    assert!(more.is_empty(), "fired past end_at: {:?}", summary(&more));
    let timer = life.get("/v1/timers/bounded").await?;
    assert_eq!(timer["state"], "completed");
    assert_eq!(of_timer(&fired, "bounded").len(), 3);
    life.shutdown().await
}
