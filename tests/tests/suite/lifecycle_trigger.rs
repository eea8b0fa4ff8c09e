//! `/trigger` end to end: one fire at once, with the next sequence number, after which the
//! timer is as it was: the same state and the same slot.

use crate::lifecycle_support;

use std::time::Duration;

use anyhow::{Result, bail};
use lifecycle_support::{ARRIVAL_LIMIT, Lifecycle, assert_none_early, fire_seq, instant, summary};
use serde_json::{Value, json};

/// Longer than it takes a worker to fire a due timer; nothing else is due meanwhile.
const QUIET: Duration = Duration::from_millis(2_500);

/// The timer once the worker has recorded its triggered fire (no trigger pending).
async fn settled(life: &Lifecycle, id: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    loop {
        let timer = life.get(&format!("/v1/timers/{id}")).await?;
        if timer.get("triggered_at").is_none() {
            return Ok(timer);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the trigger of {id} was never recorded: {timer}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_trigger_fires_once_now_and_leaves_the_next_slot_where_it_was() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    let timer = json!({"schedule": {"every": "5s"}, "routing_key": "report"});
    let created = life.put("report", &timer).await?;
    let slot = instant(&created, "next_fire_at")?;

    let triggered = life.act("report", "trigger").await?;
    let triggered_at = instant(&triggered, "triggered_at")?;
    let fired = life.next_fires(1).await?;

    assert_eq!(fire_seq(&fired[0]), 1);
    assert_eq!(fired[0].scheduled_at(), triggered_at);
    assert!(triggered_at < slot);
    assert_none_early(&fired);
    let after = settled(&life, "report").await?;
    assert_eq!(after["state"], "scheduled");
    assert_eq!(instant(&after, "next_fire_at")?, slot);
    assert_eq!(after["fire_count"], 1);

    let regular = life.next_fires(1).await?;
    assert_eq!(fire_seq(&regular[0]), 2);
    assert_eq!(regular[0].scheduled_at(), slot);
    assert_none_early(&regular);
    life.shutdown().await
}

#[tokio::test]
async fn a_triggered_paused_or_completed_timer_fires_once_and_stays_as_it_was() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    let hourly = json!({"schedule": {"every": "1h"}, "routing_key": "hourly"});
    let created = life.put("paused", &hourly).await?;
    life.act("paused", "pause").await?;
    let once = json!({"schedule": {"after": "0s"}, "routing_key": "once"});
    life.put("done", &once).await?;
    let first = life.next_fires(1).await?;
    assert_eq!(first[0].timer_id(), "done");
    settled(&life, "done").await?;

    life.act("paused", "trigger").await?;
    life.act("done", "trigger").await?;
    let fired = life.next_fires(2).await?;
    let more = life.fired_within(QUIET).await;

    let mut seen: Vec<(String, i64)> = fired
        .iter()
        .map(|event| (event.timer_id().to_owned(), fire_seq(event)))
        .collect();
    seen.sort();
    assert_eq!(seen, [("done".to_owned(), 2), ("paused".to_owned(), 1)]);
    assert!(more.is_empty(), "fired again: {:?}", summary(&more));
    let paused = settled(&life, "paused").await?;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["next_fire_at"], created["next_fire_at"]);
    let done = settled(&life, "done").await?;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["next_fire_at"], Value::Null);
    assert_eq!(done["fire_count"], 2);

    let history = life.get("/v1/timers/done/fires").await?;
    let listed: Vec<i64> = history["fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fire| fire["fire_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [2, 1]);
    life.shutdown().await
}
