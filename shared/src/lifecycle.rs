//! What a client may do to a stored timer besides creating and deleting it: replace its
//! definition, pause it, resume it and trigger a fire out of schedule. Each is a pure step
//! from the timer as stored, and the database's now, to the timer as it is to be stored;
//! [`crate::store::timers`] locks the row, applies the step and writes the result.
//!
//! - Replace: the new definition, with its first fire computed afresh from now. The timer
//!   keeps its incarnation (`uid`) and `fire_count`, so message ids stay unique, and so
//!   `max_fires` counts the fires made before the replace too. A paused timer stays paused
//!   (waiting for the new schedule's first slot); any other one is scheduled again, a
//!   completed or failed one included, unless the new schedule has nothing left to fire.
//! - Pause: a scheduled timer stops firing and keeps, as `next_fire_at`, the slot it was
//!   waiting for. Pausing a paused timer changes nothing.
//! - Resume: a paused timer goes on. The slot it was waiting for and each later one already
//!   due are missed fires, handled by the schedule's `on_missed` policy
//!   ([`Schedule::resume_fire`]). Resuming a scheduled timer changes nothing.
//! - Trigger: one fire at once, out of schedule, of a scheduled, paused or completed timer.
//!   The schedule does not move: the worker puts the timer back as it was (the same state
//!   and slot) once the triggered fire is recorded. A trigger while another is pending is
//!   the same fire, and changes nothing.
//!
//! A completed or failed timer cannot be paused or resumed, and a failed one cannot be
//! triggered (its row could not be fired): replacing it defines it anew.

use std::fmt;

use jiff::Timestamp;
use serde_json::json;
use thiserror::Error;

use crate::schedule::Schedule;
use crate::timer::{Timer, TimerDefinition, TimerState};

/// A change of state a client asks for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Trigger,
}

impl Action {
    /// The name of the action, as in its route.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Trigger => "trigger",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LifecycleError {
    /// The timer's state does not allow the action.
    #[error("a {state} timer cannot be asked to {action}")]
    NotAllowed { action: Action, state: TimerState },
    /// The stored schedule does not read back; the api never stores one like it.
    #[error("the stored schedule cannot be read: {0}")]
    UnreadableSchedule(String),
}

/// Applies `action` to `timer` at the database's `now`: the timer as it is to be stored, or
/// `None` when it already is where the action leads (a repeated pause, resume or trigger).
pub fn apply(
    timer: &Timer,
    action: Action,
    now: Timestamp,
) -> Result<Option<Timer>, LifecycleError> {
    match (action, timer.state) {
        (Action::Pause, TimerState::Scheduled) => Ok(Some(Timer {
            state: TimerState::Paused,
            ..timer.clone()
        })),
        (Action::Resume, TimerState::Paused) => resume(timer, now).map(Some),
        (Action::Pause, TimerState::Paused) | (Action::Resume, TimerState::Scheduled) => Ok(None),
        (Action::Pause | Action::Resume, TimerState::Completed | TimerState::Failed)
        | (Action::Trigger, TimerState::Failed) => Err(LifecycleError::NotAllowed {
            action,
            state: timer.state,
        }),
        (Action::Trigger, _) if timer.triggered_at.is_some() => Ok(None),
        (Action::Trigger, _) => Ok(Some(Timer {
            triggered_at: Some(now),
            ..timer.clone()
        })),
    }
}

/// The paused timer going on from the slot it was waiting for, by its missed-fire policy.
fn resume(timer: &Timer, now: Timestamp) -> Result<Timer, LifecycleError> {
    let schedule =
        Schedule::from_stored(&timer.schedule).map_err(LifecycleError::UnreadableSchedule)?;
    let next_fire_at = schedule.resume_fire(timer.next_fire_at, now);
    Ok(Timer {
        state: live_or_completed(next_fire_at),
        next_fire_at,
        ..timer.clone()
    })
}

/// `timer` with the new `definition`, defined at the database's `now`.
pub fn replace(timer: &Timer, definition: &TimerDefinition, now: Timestamp) -> Timer {
    let next_fire_at = if has_fired_enough(&definition.schedule, timer.fire_count) {
        None
    } else {
        definition.schedule.first_fire(now)
    };
    let state = match (timer.state, next_fire_at) {
        (TimerState::Paused, Some(_)) => TimerState::Paused,
        _ => live_or_completed(next_fire_at),
    };
    Timer {
        group: definition.group.clone(),
        schedule: definition.schedule.to_json(),
        routing_key: definition.routing_key.clone(),
        payload: definition.payload.clone(),
        headers: json!(definition.headers),
        expire_after: definition.expire_after,
        state,
        next_fire_at,
        failure_reason: None,
        ..timer.clone()
    }
}

fn live_or_completed(next_fire_at: Option<Timestamp>) -> TimerState {
    match next_fire_at {
        Some(_) => TimerState::Scheduled,
        None => TimerState::Completed,
    }
}

/// Whether a timer that fired `fire_count` times has used up the `max_fires` of `schedule`.
fn has_fired_enough(schedule: &Schedule, fire_count: i64) -> bool {
    schedule
        .max_fires()
        .is_some_and(|max_fires| fire_count >= max_fires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use uuid::Uuid;

    use crate::timer::{Limits, NewTimer};

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn definition(value: Value) -> TimerDefinition {
        NewTimer::from_json(&value, Limits::default())
            .unwrap()
            .definition
    }

    /// A timer firing every second, waiting for its slot at 00:00:10.
    fn every_second(on_missed: &str) -> Timer {
        Timer {
            namespace: "acme".to_owned(),
            id: "t1".to_owned(),
            uid: Uuid::now_v7(),
            group: None,
            schedule: json!({"every": "1s", "on_missed": on_missed}),
            routing_key: "k".to_owned(),
            payload: Value::Null,
            headers: json!({}),
            expire_after: None,
            state: TimerState::Scheduled,
            next_fire_at: Some(ts("2027-01-01T00:00:10Z")),
            triggered_at: None,
            fire_count: 9,
            last_fired_at: Some(ts("2027-01-01T00:00:09.002Z")),
            failure_reason: None,
            version: 4,
            created_at: ts("2027-01-01T00:00:00Z"),
            updated_at: ts("2027-01-01T00:00:09.002Z"),
        }
    }

    fn changed(outcome: Result<Option<Timer>, LifecycleError>) -> Timer {
        match outcome {
            Ok(Some(timer)) => timer,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn a_paused_timer_keeps_the_slot_it_was_waiting_for() {
        let timer = every_second("fire_once");
        let now = ts("2027-01-01T00:00:09.500Z");

        let paused = changed(apply(&timer, Action::Pause, now));

        assert_eq!(paused.state, TimerState::Paused);
        assert_eq!(paused.next_fire_at, timer.next_fire_at);
        assert_eq!(apply(&paused, Action::Pause, now), Ok(None));
    }

    #[test]
    fn a_resumed_timer_applies_its_missed_fire_policy_to_the_slot_it_waited_for() {
        let now = ts("2027-01-01T00:00:20.500Z");
        let resumed = |on_missed: &str| {
            let paused = Timer {
                state: TimerState::Paused,
                ..every_second(on_missed)
            };
            changed(apply(&paused, Action::Resume, now))
        };

        let fire_once = resumed("fire_once");
        assert_eq!(fire_once.state, TimerState::Scheduled);
        assert_eq!(fire_once.next_fire_at, Some(ts("2027-01-01T00:00:20Z")));
        assert_eq!(
            resumed("skip").next_fire_at,
            Some(ts("2027-01-01T00:00:21Z"))
        );
        assert_eq!(
            resumed("fire_all").next_fire_at,
            Some(ts("2027-01-01T00:00:10Z"))
        );
    }

    #[test]
    fn resuming_a_scheduled_timer_changes_nothing() {
        let timer = every_second("fire_once");
        let now = ts("2027-01-01T00:00:09.500Z");
        assert_eq!(apply(&timer, Action::Resume, now), Ok(None));
    }

    #[test]
    fn finished_timers_cannot_be_paused_or_resumed_and_failed_ones_not_triggered() {
        let now = ts("2027-01-01T00:00:09.500Z");
        for state in [TimerState::Completed, TimerState::Failed] {
            let timer = Timer {
                state,
                next_fire_at: None,
                ..every_second("fire_once")
            };
            for action in [Action::Pause, Action::Resume] {
                assert_eq!(
                    apply(&timer, action, now),
                    Err(LifecycleError::NotAllowed { action, state })
                );
            }
        }
        let failed = Timer {
            state: TimerState::Failed,
            ..every_second("fire_once")
        };
        assert!(apply(&failed, Action::Trigger, now).is_err());
    }

    #[test]
    fn a_trigger_fires_now_and_leaves_the_schedule_alone() {
        let now = ts("2027-01-01T00:00:09.500Z");
        for state in [
            TimerState::Scheduled,
            TimerState::Paused,
            TimerState::Completed,
        ] {
            let timer = Timer {
                state,
                ..every_second("fire_once")
            };

            let triggered = changed(apply(&timer, Action::Trigger, now));

            assert_eq!(triggered.triggered_at, Some(now));
            assert_eq!(triggered.state, state);
            assert_eq!(triggered.next_fire_at, timer.next_fire_at);
            let later = ts("2027-01-01T00:00:09.700Z");
            assert_eq!(apply(&triggered, Action::Trigger, later), Ok(None));
        }
    }

    #[test]
    fn a_replaced_timer_starts_its_new_schedule_from_now_and_keeps_its_incarnation() {
        let timer = Timer {
            state: TimerState::Failed,
            failure_reason: Some("broken".to_owned()),
            ..every_second("fire_once")
        };
        let now = ts("2027-01-01T00:01:00Z");
        let new = definition(json!({"schedule": {"every": "1m"}, "routing_key": "k2",
                                    "expire_after": "30s"}));

        let replaced = replace(&timer, &new, now);

        assert_eq!(replaced.state, TimerState::Scheduled);
        assert_eq!(replaced.next_fire_at, Some(ts("2027-01-01T00:02:00Z")));
        assert_eq!(replaced.failure_reason, None);
        assert_eq!(replaced.routing_key, "k2");
        assert_eq!(replaced.schedule, new.schedule.to_json());
        assert!(replaced.has_definition(&new));
        assert_eq!(
            (replaced.uid, replaced.fire_count, replaced.version),
            (timer.uid, timer.fire_count, timer.version)
        );
    }

    #[test]
    fn a_replaced_paused_timer_stays_paused_and_a_completed_one_lives_again() {
        let now = ts("2027-01-01T00:01:00Z");
        let new = definition(json!({"schedule": {"after": "1h"}, "routing_key": "k"}));
        let paused = Timer {
            state: TimerState::Paused,
            ..every_second("fire_once")
        };
        let completed = Timer {
            state: TimerState::Completed,
            next_fire_at: None,
            ..every_second("fire_once")
        };

        assert_eq!(replace(&paused, &new, now).state, TimerState::Paused);
        let revived = replace(&completed, &new, now);
        assert_eq!(revived.state, TimerState::Scheduled);
        assert_eq!(revived.next_fire_at, Some(ts("2027-01-01T01:01:00Z")));
    }

    #[test]
    fn a_replace_whose_max_fires_is_already_used_up_completes_the_timer() {
        let now = ts("2027-01-01T00:01:00Z");
        let timer = every_second("fire_once");
        let used_up = definition(json!({"schedule": {"every": "1s", "max_fires": 9},
                                        "routing_key": "k"}));
        let room_left = definition(json!({"schedule": {"every": "1s", "max_fires": 10},
                                          "routing_key": "k"}));

        let replaced = replace(&timer, &used_up, now);
        assert_eq!(replaced.state, TimerState::Completed);
        assert_eq!(replaced.next_fire_at, None);
        assert_eq!(
            replace(&timer, &room_left, now).state,
            TimerState::Scheduled
        );
    }
}
