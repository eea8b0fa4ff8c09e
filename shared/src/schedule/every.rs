//! Fixed-rate schedules, `{"every": "5m"}`: slots on a grid of equal steps of elapsed time,
//! blind to time zones and DST. The grid is anchored at `start_at`, or at the moment the
//! timer was defined. The anchor is not stored: each fire is itself on the grid, so the next
//! slot is always the last one plus the step.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::recurrence::{self, Recurrence, Slots};
use crate::duration::Millis;
use crate::validation::{Errors, FieldError};

/// The shortest `every`: one second, the finest step a cron pattern can express too. Each
/// fire is a database transaction and a confirmed publish, so a finer rate would let one
/// timer take a large share of a worker; a client that needs more can create more timers.
pub const MIN_EVERY: Millis = Millis::SECOND;

/// A fixed-rate schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EverySchedule {
    /// The step between two slots, at least [`MIN_EVERY`].
    pub every: Millis,
    pub recurrence: Recurrence,
}

impl EverySchedule {
    /// Reads `{"every": ..., "start_at"?, "end_at"?, "max_fires"?, "on_missed"?}`.
    pub(super) fn from_object(object: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Errors::default();
        super::reject_unknown(object, "every", &recurrence::FIELDS, &mut errors);

        let every = match Millis::from_json(&object["every"]) {
            Ok(every) if every < MIN_EVERY => {
                errors.add("every", format!("must be at least {MIN_EVERY}"));
                None
            }
            Ok(every) => Some(every),
            Err(detail) => {
                errors.add("every", detail);
                None
            }
        };
        let recurrence = Recurrence::from_object(object, &mut errors);

        match every {
            Some(every) if errors.is_empty() => Ok(EverySchedule { every, recurrence }),
            _ => Err(errors.into_vec()),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("every".to_owned(), json!(self.every.to_string()));
        self.recurrence.write_json(&mut object);
        Value::Object(object)
    }

    /// The first slot is start_at (slots between a past start_at and the definition are
    /// missed fires), or one step after the definition.
    pub(super) fn first_fire(&self, defined_at: Timestamp) -> Option<Timestamp> {
        let anchor = self.recurrence.start_at.unwrap_or(defined_at);
        let grid = self.grid(anchor);
        let first = match self.recurrence.start_at {
            Some(start_at) => Some(start_at),
            None => grid.slot_after(defined_at),
        };
        self.recurrence.catch_up(&grid, first, defined_at)
    }

    pub(super) fn next_fire(
        &self,
        scheduled: Timestamp,
        fire_count: i64,
        now: Timestamp,
    ) -> Option<Timestamp> {
        if self.recurrence.has_fired_enough(fire_count) {
            return None;
        }
        let grid = self.grid(scheduled);
        self.recurrence
            .catch_up(&grid, grid.slot_after(scheduled), now)
    }

    pub(super) fn resume_fire(&self, pending: Timestamp, now: Timestamp) -> Option<Timestamp> {
        self.recurrence
            .catch_up(&self.grid(pending), Some(pending), now)
    }

    /// Slots after `after`: on the grid from start_at, or from `after` itself without one.
    pub(super) fn preview(&self, after: Timestamp, count: usize) -> Vec<Timestamp> {
        let grid = self.grid(self.recurrence.start_at.unwrap_or(after));
        let first = match self.recurrence.start_at {
            Some(start_at) if start_at > after => Some(start_at),
            _ => grid.slot_after(after),
        };
        self.recurrence.preview(&grid, first, count)
    }

    fn grid(&self, anchor: Timestamp) -> Grid {
        Grid {
            anchor,
            step: self.every.as_signed_duration(),
        }
    }
}

/// Slots `anchor + k * step` for every k >= 0.
struct Grid {
    anchor: Timestamp,
    step: SignedDuration,
}

impl Grid {
    /// The slot `steps` steps after the anchor, if it is a representable instant.
    fn slot(&self, steps: i128) -> Option<Timestamp> {
        let nanos = self.anchor.as_nanosecond() + steps * self.step.as_nanos();
        Timestamp::from_nanosecond(nanos).ok()
    }

    /// Whole steps from the anchor to `instant`, rounded down.
    fn steps_to(&self, instant: Timestamp) -> i128 {
        (instant.as_nanosecond() - self.anchor.as_nanosecond()).div_euclid(self.step.as_nanos())
    }
}

impl Slots for Grid {
    fn slot_after(&self, instant: Timestamp) -> Option<Timestamp> {
        if instant < self.anchor {
            return Some(self.anchor);
        }
        self.slot(self.steps_to(instant) + 1)
    }

    fn slot_at_or_before(&self, instant: Timestamp) -> Option<Timestamp> {
        if instant < self.anchor {
            return None;
        }
        self.slot(self.steps_to(instant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::recurrence::{MAX_CATCH_UP_FIRES, OnMissed};
    use serde_json::json;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn every(value: Value) -> EverySchedule {
        EverySchedule::from_object(value.as_object().unwrap()).unwrap()
    }

    fn every_second(on_missed: &str) -> EverySchedule {
        every(json!({"every": "1s", "on_missed": on_missed}))
    }

    /// Fires as a worker would make them, starting from the fire scheduled at `scheduled`,
    /// while the database clock stands still at `now`; stops at the first fire in the future.
    fn fires_until_caught_up(
        schedule: &EverySchedule,
        scheduled: Timestamp,
        now: Timestamp,
    ) -> Vec<Timestamp> {
        let mut fires = Vec::new();
        let mut last = scheduled;
        for fire_count in 1..1_000 {
            let Some(next) = schedule.next_fire(last, fire_count, now) else {
                break;
            };
            fires.push(next);
            if next > now {
                break;
            }
            last = next;
        }
        fires
    }

    #[test]
    fn without_start_at_the_grid_starts_one_step_after_the_definition() {
        let schedule = every(json!({"every": "5m"}));
        let defined = ts("2027-01-01T00:00:00.250Z");
        assert_eq!(
            schedule.first_fire(defined),
            Some(ts("2027-01-01T00:05:00.250Z"))
        );
        let now = ts("2027-01-01T00:05:01Z");
        let next = schedule.next_fire(ts("2027-01-01T00:05:00.250Z"), 1, now);
        assert_eq!(next, Some(ts("2027-01-01T00:10:00.250Z")));
    }

    #[test]
    fn with_start_at_in_the_future_the_first_fire_is_start_at() {
        let schedule = every(json!({"every": "1h", "start_at": "2027-01-01T09:00:00Z"}));
        let defined = ts("2026-12-31T12:00:00Z");
        assert_eq!(
            schedule.first_fire(defined),
            Some(ts("2027-01-01T09:00:00Z"))
        );
    }

    #[test]
    fn with_start_at_in_the_past_the_slots_before_the_definition_are_missed_fires() {
        let defined = ts("2027-01-01T12:30:00Z");
        let first = |on_missed: &str| {
            let schedule = every(json!({
                "every": "1h", "start_at": "2027-01-01T09:00:00Z", "on_missed": on_missed
            }));
            schedule.first_fire(defined)
        };
        assert_eq!(first("fire_once"), Some(ts("2027-01-01T12:00:00Z")));
        assert_eq!(first("skip"), Some(ts("2027-01-01T13:00:00Z")));
        assert_eq!(first("fire_all"), Some(ts("2027-01-01T09:00:00Z")));
    }

    #[test]
    fn fire_once_gives_one_catch_up_fire_then_the_grid() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:10.500Z");
        let fires = fires_until_caught_up(&every_second("fire_once"), scheduled, now);
        assert_eq!(
            fires,
            [ts("2027-01-01T00:00:10Z"), ts("2027-01-01T00:00:11Z")]
        );
    }

    #[test]
    fn skip_gives_the_next_future_grid_slot() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:10.500Z");
        let fires = fires_until_caught_up(&every_second("skip"), scheduled, now);
        assert_eq!(fires, [ts("2027-01-01T00:00:11Z")]);
    }

    #[test]
    fn fire_all_gives_every_missed_slot_then_the_grid() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:10Z");
        let fires = fires_until_caught_up(&every_second("fire_all"), scheduled, now);
        let expected: Vec<Timestamp> = (1..=11)
            .map(|second| Timestamp::from_second(scheduled.as_second() + second).unwrap())
            .collect();
        assert_eq!(fires, expected);
    }

    #[test]
    fn fire_all_replays_at_most_the_cap_and_drops_the_oldest() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T01:00:00Z");
        let fires = fires_until_caught_up(&every_second("fire_all"), scheduled, now);
        let due: Vec<_> = fires.iter().filter(|fire| **fire <= now).collect();
        assert_eq!(due.len(), MAX_CATCH_UP_FIRES);
        assert_eq!(*due[0], ts("2027-01-01T00:58:21Z"));
        assert_eq!(fires.last(), Some(&ts("2027-01-01T01:00:01Z")));
    }

    #[test]
    fn a_slow_worker_within_one_step_loses_no_fire_under_any_policy() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:01.400Z");
        for on_missed in [OnMissed::FireOnce, OnMissed::Skip, OnMissed::FireAll] {
            let schedule = every_second(on_missed.as_str());
            let next = schedule.next_fire(scheduled, 1, now);
            let expected = match on_missed {
                OnMissed::Skip => ts("2027-01-01T00:00:02Z"),
                _ => ts("2027-01-01T00:00:01Z"),
            };
            assert_eq!(next, Some(expected), "{on_missed:?}");
        }
    }

    #[test]
    fn max_fires_and_end_at_complete_the_timer() {
        let limited = every(json!({"every": "1m", "max_fires": 2}));
        let scheduled = ts("2027-01-01T00:00:00Z");
        assert!(limited.next_fire(scheduled, 1, scheduled).is_some());
        assert_eq!(limited.next_fire(scheduled, 2, scheduled), None);

        let ending = every(json!({"every": "1m", "end_at": "2027-01-01T00:01:00Z"}));
        assert_eq!(
            ending.next_fire(scheduled, 1, scheduled),
            Some(ts("2027-01-01T00:01:00Z"))
        );
        assert_eq!(
            ending.next_fire(ts("2027-01-01T00:01:00Z"), 2, scheduled),
            None
        );
    }

    #[test]
    fn a_resumed_timer_applies_its_policy_to_the_slot_it_was_waiting_for() {
        let pending = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:10.500Z");
        assert_eq!(
            every_second("fire_once").resume_fire(pending, now),
            Some(ts("2027-01-01T00:00:10Z"))
        );
        assert_eq!(
            every_second("skip").resume_fire(pending, now),
            Some(ts("2027-01-01T00:00:11Z"))
        );
        assert_eq!(
            every_second("fire_all").resume_fire(pending, now),
            Some(pending)
        );
        let early = ts("2026-12-31T23:59:59Z");
        assert_eq!(
            every_second("skip").resume_fire(pending, early),
            Some(pending)
        );
    }

    #[test]
    fn every_below_one_second_or_zero_is_refused() {
        for value in [json!(0), json!(999), json!("500ms"), json!("0s"), json!(-1)] {
            let object = json!({"every": value});
            let errors = EverySchedule::from_object(object.as_object().unwrap()).unwrap_err();
            assert_eq!(errors[0].field, "every", "{value}");
        }
    }

    #[test]
    fn a_preview_lists_grid_slots_after_the_given_instant() {
        let schedule = every(json!({"every": "1h", "start_at": "2027-01-01T09:00:00Z"}));
        let preview = schedule.preview(ts("2027-01-01T10:30:00Z"), 2);
        assert_eq!(
            preview,
            [ts("2027-01-01T11:00:00Z"), ts("2027-01-01T12:00:00Z")]
        );
    }
}
