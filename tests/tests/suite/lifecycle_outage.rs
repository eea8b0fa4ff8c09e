//! Recurring timers across a stretch with no worker, end to end: each missed-fire policy
//! gives exactly the fires the schedule module promises, and `expire_after` keeps fires
//! that come too late from being published.
//!
//! The promises (`clockworks::schedule`): the slot a due timer was waiting for fires, late;
//! then `fire_once` fires once for the latest slot already due, `skip` goes to the first
//! slot after now, and `fire_all` fires every missed slot in turn.

use crate::lifecycle_support;

use std::time::Duration;

use anyhow::Result;
use clockworks_tests::Fired;
use jiff::Timestamp;
use lifecycle_support::{
    Lifecycle, PERIOD, assert_none_early, fire_seq, instant, of_timer, summary,
};
use serde_json::json;

/// How long no worker runs: five periods of the `every: 1s` timers.
const OUTAGE: Duration = Duration::from_secs(5);
/// Long enough after a worker starts for every catch-up fire and a few on time.
const AFTER_RESTART: Duration = Duration::from_secs(4);
/// Long enough for a fire confirmed before a stop to reach the consumer.
const DRAIN: Duration = Duration::from_millis(800);

const POLICIES: [&str; 3] = ["fire_once", "skip", "fire_all"];

/// Whole periods from `earlier` to `later`, rounded down.
fn periods_between(earlier: Timestamp, later: Timestamp) -> i64 {
    later
        .duration_since(earlier)
        .as_secs()
        .div_euclid(PERIOD.as_secs())
}

fn is_on_grid(slot: Timestamp, anchor: Timestamp) -> bool {
    slot.duration_since(anchor).subsec_nanos() == 0
}

#[tokio::test]
async fn after_an_outage_each_missed_fire_policy_fires_exactly_what_it_promises() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    for policy in POLICIES {
        let timer = json!({"schedule": {"every": "1s", "on_missed": policy},
                           "routing_key": "tick"});
        life.put(policy, &timer).await?;
    }
    let mut before = life.next_fires(POLICIES.len()).await?;

    life.stop_workers().await?;
    before.extend(life.fired_within(DRAIN).await);
    let mut pending = Vec::new();
    for policy in POLICIES {
        let timer = life.get(&format!("/v1/timers/{policy}")).await?;
        pending.push(instant(&timer, "next_fire_at")?);
    }
    tokio::time::sleep(OUTAGE).await;
    let restarted_at = life.database_now().await?;
    life.start_worker().await?;
    let after = life.fired_within(AFTER_RESTART).await;
    assert_none_early(&after);

    for (policy, pending) in POLICIES.into_iter().zip(pending) {
        let last_before = of_timer(&before, policy).last().map_or(0, fire_seq);
        let fires = of_timer(&after, policy);
        let slots: Vec<Timestamp> = fires.iter().map(Fired::scheduled_at).collect();
        let context = format!(
            "{policy}: waited for {pending}, restarted at {restarted_at}, \
                               fired {:?}",
            summary(&fires)
        );

        // Every policy: consecutive sequence numbers, the waited-for slot first, on the grid.
        let seqs: Vec<i64> = fires.iter().map(fire_seq).collect();
        let expected: Vec<i64> = (1..=fires.len() as i64).map(|k| last_before + k).collect();
        assert_eq!(seqs, expected, "{context}");
        assert_eq!(slots.first(), Some(&pending), "{context}");
        assert!(
            slots.iter().all(|slot| is_on_grid(*slot, pending)),
            "{context}"
        );
        assert!(slots.windows(2).all(|pair| pair[0] < pair[1]), "{context}");
        let missed = periods_between(pending, restarted_at) + 1;
        assert!(
            missed >= 4,
            "the outage covered only {missed} slots: {context}"
        );

        let due_before_restart = slots.iter().filter(|slot| **slot <= restarted_at).count();
        match policy {
            "fire_once" => {
                // One catch-up fire, for the latest slot due when the worker claimed it (at
                // or after the restart), then the grid.
                let caught_up = slots[1];
                assert!(caught_up > restarted_at - PERIOD, "{context}");
                let dropped = slots
                    .iter()
                    .filter(|slot| **slot > pending && **slot <= restarted_at - PERIOD)
                    .count();
                assert_eq!(dropped, 0, "{context}");
                assert!(
                    slots[1..]
                        .windows(2)
                        .all(|pair| pair[1] - PERIOD == pair[0])
                );
            }
            "skip" => {
                assert_eq!(due_before_restart, 1, "{context}");
                assert!(slots[1] > restarted_at, "{context}");
                assert!(
                    slots[1..]
                        .windows(2)
                        .all(|pair| pair[1] - PERIOD == pair[0])
                );
            }
            _ => {
                assert_eq!(due_before_restart as i64, missed, "{context}");
                assert!(
                    slots.windows(2).all(|pair| pair[1] - PERIOD == pair[0]),
                    "{context}"
                );
            }
        }
    }
    life.shutdown().await
}

#[tokio::test]
async fn fires_later_than_expire_after_are_recorded_as_expired_and_never_published() -> Result<()> {
    let mut life = Lifecycle::start().await?;
    life.stop_workers().await?;
    let now = life.database_now().await?;
    let due = Timestamp::from_second(now.as_second() + 1)?.to_string();
    let late = json!({"schedule": {"at": due}, "routing_key": "once", "expire_after": "1s"});
    let control = json!({"schedule": {"at": due}, "routing_key": "once"});
    let recurring = json!({"schedule": {"every": "1s", "on_missed": "fire_once"},
                           "routing_key": "tick", "expire_after": "2s"});
    life.put("late", &late).await?;
    life.put("control", &control).await?;
    let created = life.put("recurring", &recurring).await?;
    let first_slot = instant(&created, "next_fire_at")?;

    tokio::time::sleep(OUTAGE).await;
    let restarted_at = life.database_now().await?;
    life.start_worker().await?;
    let fired = life.fired_within(AFTER_RESTART).await;

    // The one-shot fired once, recorded as expired and published nothing.
    assert_eq!(
        of_timer(&fired, "control").len(),
        1,
        "{:?}",
        summary(&fired)
    );
    assert!(of_timer(&fired, "late").is_empty(), "{:?}", summary(&fired));
    let timer = life.get("/v1/timers/late").await?;
    assert_eq!(timer["state"], "completed");
    assert_eq!(timer["fire_count"], 1);
    let history = life.get("/v1/timers/late/fires").await?;
    assert_eq!(history["fires"][0]["outcome"], "expired");
    assert!(history["fires"][0]["lateness_ms"].as_i64().unwrap() > 1_000);

    // The recurring timer's waited-for slot expired; its catch-up fire came in time.
    let recurring = of_timer(&fired, "recurring");
    let first = recurring
        .first()
        .expect("the recurring timer fired after the restart");
    assert_eq!(fire_seq(first), 2, "{:?}", summary(&recurring));
    assert!(first.scheduled_at() > restarted_at - PERIOD);
    let history = life.get("/v1/timers/recurring/fires?limit=1000").await?;
    let oldest = history["fires"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["fire_seq"], 1);
    assert_eq!(oldest["outcome"], "expired");
    assert_eq!(oldest["scheduled_at"], first_slot.to_string());

    let metrics_url = format!("{}/metrics", life.stack.workers[0].admin_url);
    let metrics = life
        .stack
        .http
        .get(metrics_url)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("clockworks_fires_total{outcome=\"expired\"} 2"),
        "{metrics}"
    );
    life.shutdown().await
}
