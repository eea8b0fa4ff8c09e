//! Group actions through the real api and worker: deleting a group touches that group of
//! that namespace only, and a paused group resumes by each timer's missed-fire policy.

use crate::batch_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use batch_support::{apply, count, send, stack_with_key, timers, write_key};
use clockworks_tests::Fired;
use clockworks_tests::seed;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

/// How far ahead the timers of the delete test are due: the delete must be applied before.
const DUE_IN_MS: i64 = 8_000;
/// Generous bound for fires that are due to arrive.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);
/// Slots a paused timer misses before it is resumed, at least.
const MISSED_SLOTS: i64 = 3;
/// How long fires are collected after a resume.
const AFTER_RESUME: Duration = Duration::from_secs(3);

fn instant(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not an instant"))
}

#[tokio::test]
async fn deleting_a_group_removes_that_group_of_that_namespace_only_and_none_of_it_fires()
-> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let other = write_key(&stack, "globex").await?;
    let mut consumer = stack.consumer("#").await?;
    let due = seed::due_in(&stack.db.client().await?, DUE_IN_MS).await?;
    let schedule = json!({"at": due.to_string()});
    for (key, prefix, group, count) in [
        (&key, "doomed", "doomed", 5),
        (&key, "kept", "kept", 3),
        (&other, "theirs", "doomed", 2),
    ] {
        let batch = Value::Array(timers(prefix, count, group, &schedule));
        apply(&stack, Method::POST, "/v1/timers", key, Some(&batch)).await?;
    }

    let operation = apply(
        &stack,
        Method::DELETE,
        "/v1/timers?group=doomed",
        &key,
        None,
    )
    .await?;

    assert!(
        instant(&operation["finished_at"]) < due,
        "the delete finished after the timers were due; the test cannot tell whether they fire"
    );
    assert_eq!(operation["kind"], "delete");
    assert_eq!(operation["counts"]["deleted"], 5);
    let acme = "acme";
    let doomed = "doomed";
    let left = count(
        &stack,
        "select count(*) from timers where namespace = $1 and group_name = $2",
        &[&acme, &doomed],
    )
    .await?;
    assert_eq!(left, 0);
    assert_eq!(count(&stack, "select count(*) from timers", &[]).await?, 5);

    let fired = consumer.collect(5, ARRIVAL_LIMIT).await;
    let extra = consumer.collect_for(Duration::from_secs(2)).await;
    let mut fired_ids: Vec<String> = fired
        .iter()
        .chain(&extra)
        .map(|fired| {
            let namespace = fired.body["namespace"].as_str().unwrap_or_default();
            format!("{namespace}/{}", fired.timer_id())
        })
        .collect();
    fired_ids.sort();
    assert_eq!(
        fired_ids,
        [
            "acme/kept-00000",
            "acme/kept-00001",
            "acme/kept-00002",
            "globex/theirs-00000",
            "globex/theirs-00001",
        ]
    );
    stack.shutdown().await
}

/// The fires of one timer, by fire sequence.
fn fires_of<'a>(fired: &'a [Fired], id: &str) -> Vec<&'a Fired> {
    let mut fires: Vec<&Fired> = fired.iter().filter(|f| f.timer_id() == id).collect();
    fires.sort_by_key(|f| f.body["fire_seq"].as_i64());
    fires
}

fn fired_at(fired: &Fired) -> Timestamp {
    instant(&fired.body["fired_at"])
}

#[tokio::test]
async fn a_paused_group_misses_its_slots_and_resumes_by_each_timers_missed_fire_policy()
-> Result<()> {
    let (stack, key) = stack_with_key(1).await?;
    let mut consumer = stack.consumer("acme.#").await?;
    let policies = ["fire_once", "skip", "fire_all"];
    let batch: Vec<Value> = policies
        .iter()
        .map(|policy| {
            json!({
                "id": policy,
                "group": "pulse",
                "schedule": {"every": "1s", "on_missed": policy},
                "routing_key": "pulse",
            })
        })
        .collect();
    apply(
        &stack,
        Method::POST,
        "/v1/timers",
        &key,
        Some(&json!(batch)),
    )
    .await?;

    let pause = apply(&stack, Method::POST, "/v1/groups/pulse/pause", &key, None).await?;
    assert_eq!(pause["kind"], "pause");
    assert_eq!(pause["counts"]["paused"], 3);
    let mut slots = BTreeMap::new();
    for policy in policies {
        let timer: Value = send(
            &stack,
            Method::GET,
            &format!("/v1/timers/{policy}"),
            &key,
            None,
        )
        .await?
        .json()
        .await?;
        assert_eq!(timer["state"], "paused");
        slots.insert(policy, instant(&timer["next_fire_at"]));
    }
    let groups: Value = send(&stack, Method::GET, "/v1/groups", &key, None)
        .await?
        .json()
        .await?;
    assert_eq!(
        groups["groups"],
        json!([{"group": "pulse", "total": 3,
                "counts": {"scheduled": 0, "paused": 3, "completed": 0, "failed": 0}}])
    );

    let latest_slot = *slots.values().max().unwrap();
    let client = stack.db.client().await?;
    let resume_after = latest_slot + SignedDuration::from_millis(MISSED_SLOTS * 1_000 + 500);
    while seed::database_now(&client).await? < resume_after {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resume = apply(&stack, Method::POST, "/v1/groups/pulse/resume", &key, None).await?;
    let resumed_from = instant(&resume["started_at"]);
    let resumed_by = instant(&resume["finished_at"]);
    assert_eq!(resume["counts"]["resumed"], 3);
    let fired = consumer.collect_for(AFTER_RESUME).await;
    apply(&stack, Method::DELETE, "/v1/groups/pulse", &key, None).await?;

    for policy in policies {
        let slot = slots[policy];
        let fires = fires_of(&fired, policy);
        let missed: Vec<&&Fired> = fires.iter().filter(|f| f.scheduled_at() >= slot).collect();
        assert!(
            missed.iter().all(|f| fired_at(f) >= resumed_from),
            "{policy}: a slot from the pause on fired before the resume"
        );
        assert!(
            missed.len() >= 2,
            "{policy}: too few fires after the resume"
        );
        let first = missed[0].scheduled_at();
        let second = missed[1].scheduled_at();
        match policy {
            "fire_all" => {
                let scheduled: Vec<Timestamp> = missed.iter().map(|f| f.scheduled_at()).collect();
                let expected: Vec<Timestamp> = (0..=MISSED_SLOTS)
                    .map(|n| slot + SignedDuration::from_secs(n))
                    .collect();
                assert_eq!(scheduled[..expected.len()], expected, "fire_all");
            }
            "fire_once" => {
                assert!(first > slot + SignedDuration::from_secs(MISSED_SLOTS - 1));
                assert!(
                    first <= resumed_by,
                    "fire_once fires the latest missed slot"
                );
                assert_eq!(second, first + SignedDuration::from_secs(1));
                assert!(
                    second > resumed_from,
                    "fire_once fires only one missed slot"
                );
            }
            _ => {
                assert!(first > resumed_from, "skip fires no missed slot: {first}");
                assert_eq!(second, first + SignedDuration::from_secs(1));
            }
        }
    }
    stack.shutdown().await
}
