//! When a timer fires. A schedule is validated once, when a client defines it, and stored in
//! its canonical JSON form; the worker reads it back to compute each next fire.
//!
//! - `{"at": "<RFC 3339 instant>"}`: once, at that instant (in the past: at once).
//! - `{"after": "30s"}`: once, that long after the timer was defined.
//! - `{"every": "5m"}`: fixed rate, on a grid anchored at `start_at` or at the definition
//!   ([`every`]); at least [`MIN_EVERY`].
//! - `{"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"}`: the civil times a pattern
//!   matches, in an IANA zone, `UTC` by default ([`cron`]).
//!
//! Rules:
//! - Instants carry an offset, lie between 1970 and the year 4000, and are rounded up to the
//!   microsecond the database keeps (up, so that nothing fires early).
//! - Durations are exact milliseconds up to 100 years; a day is 24 hours ([`crate::duration`]).
//! - Recurring schedules take `start_at` (first slot, inclusive), `end_at` (last possible
//!   slot, inclusive), `max_fires` (at least 1) and `on_missed` ([`recurrence`]). A timer
//!   completes when no slot is left.
//! - DST (cron only, [`dst`]): a match in a spring-forward gap fires at the transition, the
//!   first valid instant after the gap (`"dst_gap": "shift"`, default) or not at all
//!   (`"skip"`); a match in a fall-back overlap fires once at its earlier instant
//!   (`"dst_overlap": "earlier"`, default) or at both (`"both"`). Fires strictly increase.
//! - Missed fires (slots that came due while paused or while no worker ran): `"on_missed":
//!   "fire_once"` (default) fires once at once for the latest missed slot, `"skip"` goes to
//!   the next future slot, `"fire_all"` fires each, at most [`MAX_CATCH_UP_FIRES`] (the
//!   oldest beyond are dropped). The slot a due timer was waiting for fires, late if need
//!   be; the policy decides the slots after it, or, for a resumed timer, that slot too. A
//!   past `start_at` makes the slots before the definition missed fires.
//! - Every search is bounded: a cron pattern must match some day of the calendar, a search
//!   crosses at most [`MAX_TRANSITIONS_PER_SEARCH`] zone transitions, a catch-up walks at
//!   most [`MAX_CATCH_UP_FIRES`] slots and a preview lists at most [`MAX_PREVIEW_FIRES`].

pub mod cron;
pub mod dst;
pub mod every;
pub mod recurrence;

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::duration::Millis;
use crate::validation::{Errors, FieldError};

pub use cron::CronSchedule;
pub use dst::{DstGap, DstOverlap, MAX_TRANSITIONS_PER_SEARCH};
pub use every::{EverySchedule, MIN_EVERY};
pub use recurrence::{MAX_CATCH_UP_FIRES, OnMissed, Recurrence};

/// Most fires one preview lists.
pub const MAX_PREVIEW_FIRES: usize = 1_000;

/// The earliest instant a schedule may name: zone rules before 1970 are unreliable.
pub const EARLIEST_INSTANT: Timestamp = Timestamp::UNIX_EPOCH;

/// The end of the instants a schedule may name (exclusive): 4000-01-01T00:00:00Z, so that a
/// cron search from any of them, across a 400-year cycle, stays within croner's calendar.
pub const LATEST_INSTANT: Timestamp = Timestamp::constant(64_060_588_800, 0);

/// The kinds of schedule, by the field that names each.
const KINDS: [&str; 4] = ["at", "after", "every", "cron"];

/// A validated schedule in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    At { at: Timestamp },
    After { after: Millis },
    Every(EverySchedule),
    Cron(Box<CronSchedule>),
}

impl Schedule {
    /// Validates a schedule object as a client sent it. Every error names its field relative
    /// to the schedule object (`at`, `cron`, `timezone`); the caller adds the enclosing path.
    pub fn from_json(value: &Value) -> Result<Schedule, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "must be an object with one of \"at\", \"after\", \"every\" or \"cron\"",
            )]);
        };
        let kinds: Vec<&str> = KINDS
            .into_iter()
            .filter(|kind| object.contains_key(*kind))
            .collect();
        match kinds.as_slice() {
            ["at"] => parse_at(object),
            ["after"] => parse_after(object),
            ["every"] => EverySchedule::from_object(object).map(Schedule::Every),
            ["cron"] => {
                CronSchedule::from_object(object).map(|cron| Schedule::Cron(Box::new(cron)))
            }
            [] => Err(vec![FieldError::new(
                "",
                "must have one of \"at\", \"after\", \"every\" or \"cron\"",
            )]),
            _ => Err(vec![FieldError::new(
                "",
                format!("must have only one of {}", kinds.join(", ")),
            )]),
        }
    }

    /// Reads a schedule as stored by [`Schedule::to_json`].
    pub fn from_stored(value: &Value) -> Result<Schedule, String> {
        Schedule::from_json(value).map_err(|errors| {
            errors
                .into_iter()
                .map(|error| format!("{}: {}", error.field, error.detail))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The canonical JSON form, stored and returned to clients. Equal schedules give equal
    /// JSON, defaults included (`"timezone": "UTC"`, `"on_missed": "fire_once"`).
    pub fn to_json(&self) -> Value {
        match self {
            Schedule::At { at } => json!({ "at": at }),
            Schedule::After { after } => json!({ "after": after.to_string() }),
            Schedule::Every(every) => every.to_json(),
            Schedule::Cron(cron) => cron.to_json(),
        }
    }

    /// The first fire of a timer defined (created or replaced) at `defined_at`, or `None`
    /// when the schedule has nothing left to fire. It may be at or before `defined_at`
    /// (fire at once): an `at` in the past, or missed slots after a past `start_at`.
    pub fn first_fire(&self, defined_at: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::At { at } => Some(*at),
            Schedule::After { after } => defined_at.checked_add(after.as_signed_duration()).ok(),
            Schedule::Every(every) => every.first_fire(defined_at),
            Schedule::Cron(cron) => cron.first_fire(defined_at),
        }
    }

    /// The fire after the one scheduled at `scheduled`, which was fire number `fire_count`
    /// (counting from 1), given the database's `now`. Slots after `scheduled` that are
    /// already due are missed fires, handled by the schedule's `on_missed` policy, so the
    /// result may be at or before `now` (fire at once). `None` completes the timer.
    pub fn next_fire(
        &self,
        scheduled: Timestamp,
        fire_count: i64,
        now: Timestamp,
    ) -> Option<Timestamp> {
        match self {
            Schedule::At { .. } | Schedule::After { .. } => None,
            Schedule::Every(every) => every.next_fire(scheduled, fire_count, now),
            Schedule::Cron(cron) => cron.next_fire(scheduled, fire_count, now),
        }
    }

    /// The next fire of a timer being resumed, or of one a worker knows it missed (catching
    /// up after downtime). `last_scheduled` is the instant the timer was last scheduled for
    /// and has not fired (its `next_fire_at`); it and every later slot already due are
    /// missed fires, handled by `on_missed`. The result may be at or before `now` (fire at
    /// once). Without `last_scheduled`, the schedule starts over as though defined at
    /// `now`. One-shot schedules keep their pending fire. `None` completes the timer.
    ///
    /// Not for a timer that is merely due: under `skip` its due slot would be dropped. A
    /// worker fires the due slot and asks [`Schedule::next_fire`] for the one after.
    pub fn resume_fire(
        &self,
        last_scheduled: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let Some(pending) = last_scheduled else {
            return self.first_fire(now);
        };
        match self {
            Schedule::At { .. } | Schedule::After { .. } => Some(pending),
            Schedule::Every(every) => every.resume_fire(pending, now),
            Schedule::Cron(cron) => cron.resume_fire(pending, now),
        }
    }

    /// The next fires strictly after `after`, DST included, as a timer defined at `after`
    /// that never misses a fire would make them: at most `count`, at most
    /// [`MAX_PREVIEW_FIRES`], within `start_at`, `end_at` and `max_fires`. An `every` without
    /// `start_at` and an `after` count from `after` itself.
    pub fn preview(&self, after: Timestamp, count: usize) -> Vec<Timestamp> {
        let count = count.min(MAX_PREVIEW_FIRES);
        if count == 0 {
            return Vec::new();
        }
        match self {
            Schedule::At { at } => [*at].into_iter().filter(|at| *at > after).collect(),
            Schedule::After { .. } => self.first_fire(after).into_iter().collect(),
            Schedule::Every(every) => every.preview(after, count),
            Schedule::Cron(cron) => cron.preview(after, count),
        }
    }

    /// Whether this schedule fires more than once.
    pub fn is_recurring(&self) -> bool {
        matches!(self, Schedule::Every(_) | Schedule::Cron(_))
    }

    /// The `max_fires` of a recurring schedule, if it sets one.
    pub fn max_fires(&self) -> Option<i64> {
        match self {
            Schedule::Every(every) => every.recurrence.max_fires,
            Schedule::Cron(cron) => cron.recurrence.max_fires,
            Schedule::At { .. } | Schedule::After { .. } => None,
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Schedule::from_stored(&value).map_err(serde::de::Error::custom)
    }
}

/// Records an error for each field that does not belong to a schedule of `kind`, whose own
/// fields besides `kind` itself are `allowed`.
fn reject_unknown(object: &Map<String, Value>, kind: &str, allowed: &[&str], errors: &mut Errors) {
    for key in object.keys() {
        if key != kind && !allowed.contains(&key.as_str()) {
            errors.add(key.clone(), format!("is not a field of {kind:?} schedules"));
        }
    }
}

fn parse_at(object: &Map<String, Value>) -> Result<Schedule, Vec<FieldError>> {
    let mut errors = Errors::default();
    reject_unknown(object, "at", &[], &mut errors);
    match parse_instant(&object["at"]) {
        Ok(at) => errors.into_result(Schedule::At { at }),
        Err(detail) => {
            errors.add("at", detail);
            Err(errors.into_vec())
        }
    }
}

fn parse_after(object: &Map<String, Value>) -> Result<Schedule, Vec<FieldError>> {
    let mut errors = Errors::default();
    reject_unknown(object, "after", &[], &mut errors);
    match Millis::from_json(&object["after"]) {
        Ok(after) => errors.into_result(Schedule::After { after }),
        Err(detail) => {
            errors.add("after", detail);
            Err(errors.into_vec())
        }
    }
}

/// Reads an RFC 3339 instant with an explicit offset (`Z` or `+02:00`), between
/// [`EARLIEST_INSTANT`] and [`LATEST_INSTANT`], rounded up to the microsecond.
pub fn parse_instant(value: &Value) -> Result<Timestamp, String> {
    let Some(text) = value.as_str() else {
        return Err("must be an RFC 3339 instant such as \"2027-01-01T09:00:00Z\"".to_owned());
    };
    let instant = text.parse::<Timestamp>().map_err(|_| {
        format!(
            "{text:?} is not an RFC 3339 instant with an offset, such as \"2027-01-01T09:00:00Z\""
        )
    })?;
    if instant < EARLIEST_INSTANT || instant >= LATEST_INSTANT {
        return Err(format!(
            "must be from {EARLIEST_INSTANT} and before {LATEST_INSTANT}"
        ));
    }
    let to_microseconds = TimestampRound::new()
        .smallest(Unit::Microsecond)
        .mode(RoundMode::Ceil);
    instant
        .round(to_microseconds)
        .map_err(|_| format!("{text:?} cannot be rounded to the microsecond"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::json;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn schedule(value: Value) -> Schedule {
        Schedule::from_json(&value).unwrap()
    }

    fn error_fields(value: Value) -> Vec<String> {
        let mut fields: Vec<String> = Schedule::from_json(&value)
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect();
        fields.sort();
        fields
    }

    /// Fires after `after` up to `until`, each computed from the one before, as the worker
    /// does while on time.
    fn fires_between(schedule: &Schedule, after: Timestamp, until: Timestamp) -> Vec<Timestamp> {
        let mut fires = Vec::new();
        let mut last = after;
        for fire_count in 1..100 {
            match schedule.next_fire(last, fire_count, last) {
                Some(next) if next <= until => {
                    fires.push(next);
                    last = next;
                }
                _ => break,
            }
        }
        fires
    }

    #[test]
    fn every_kind_round_trips_through_its_stored_form() {
        for input in [
            json!({"at": "2027-01-01T09:00:00Z"}),
            json!({"after": "PT90M"}),
            json!({"every": "5m", "start_at": "2027-01-01T10:00:00+01:00", "max_fires": 3}),
            json!({"cron": "0 9 * * mon-fri", "timezone": "europe/paris", "dst_gap": "skip",
                   "on_missed": "fire_all", "end_at": "2028-01-01T00:00:00Z"}),
        ] {
            let schedule = schedule(input);
            let stored = schedule.to_json();
            assert_eq!(Schedule::from_stored(&stored).unwrap(), schedule);
            assert_eq!(Schedule::from_json(&stored).unwrap().to_json(), stored);
            let through_serde: Schedule = serde_json::from_value(json!(schedule)).unwrap();
            assert_eq!(through_serde, schedule);
        }
    }

    #[test]
    fn equal_definitions_are_stored_alike() {
        assert_eq!(
            schedule(json!({"after": "PT90M"})).to_json(),
            json!({"after": "1h30m"})
        );
        assert_eq!(
            schedule(json!({"every": 300_000, "start_at": "2027-01-01T10:00:00+01:00"})).to_json(),
            schedule(json!({"every": "PT5M", "start_at": "2027-01-01T09:00:00Z",
                            "on_missed": "fire_once"}))
            .to_json(),
        );
        assert_eq!(
            schedule(json!({"cron": "0 9 * * *"})).to_json(),
            json!({"cron": "0 9 * * *", "timezone": "UTC", "dst_gap": "shift",
                   "dst_overlap": "earlier", "on_missed": "fire_once"})
        );
    }

    #[test]
    fn after_is_due_exactly_its_delay_after_definition() {
        let defined = ts("2027-01-01T00:00:00Z");
        for delay in [2_147_483_648_i64, 4_294_967_296] {
            let schedule = schedule(json!({"after": delay}));
            let due = schedule.first_fire(defined).unwrap();
            assert_eq!(due.as_millisecond() - defined.as_millisecond(), delay);
        }
    }

    #[test]
    fn negative_non_numeric_and_overflowing_delays_are_refused_on_the_after_field() {
        for delay in [json!(-1), json!("NaN"), json!(1e20)] {
            assert_eq!(error_fields(json!({"after": delay})), ["after"]);
        }
    }

    #[test]
    fn schedules_with_no_kind_two_kinds_or_stray_fields_are_refused() {
        assert!(Schedule::from_json(&json!({})).is_err());
        assert!(
            Schedule::from_json(&json!({"at": "2027-01-01T00:00:00Z", "after": "1s"})).is_err()
        );
        assert!(Schedule::from_json(&json!({"every": "1s", "cron": "* * * * *"})).is_err());
        assert_eq!(
            error_fields(json!({"at": "2027-01-01T00:00:00Z", "x": 1})),
            ["x"]
        );
        assert_eq!(error_fields(json!({"at": "tomorrow"})), ["at"]);
    }

    #[test]
    fn fields_of_another_kind_of_schedule_are_refused_by_name() {
        assert_eq!(
            error_fields(json!({"every": "1m", "timezone": "UTC"})),
            ["timezone"]
        );
        assert_eq!(
            error_fields(json!({"every": "1m", "dst_gap": "skip"})),
            ["dst_gap"]
        );
        assert_eq!(
            error_fields(json!({"at": "2027-01-01T00:00:00Z", "max_fires": 1})),
            ["max_fires"]
        );
        assert_eq!(
            error_fields(json!({"after": "1m", "on_missed": "skip"})),
            ["on_missed"]
        );
    }

    #[test]
    fn bad_bounds_and_limits_are_refused_by_name() {
        assert_eq!(
            error_fields(json!({"every": "1m", "start_at": "2027-01-02T00:00:00Z",
                                "end_at": "2027-01-01T00:00:00Z"})),
            ["end_at"]
        );
        for max_fires in [json!(0), json!(-3), json!(1.5), json!("2")] {
            assert_eq!(
                error_fields(json!({"cron": "* * * * *", "max_fires": max_fires})),
                ["max_fires"]
            );
        }
        assert_eq!(
            error_fields(json!({"every": "1m", "on_missed": "later"})),
            ["on_missed"]
        );
        assert_eq!(error_fields(json!({"every": 0})), ["every"]);
        assert_eq!(
            error_fields(json!({"every": "1m", "start_at": "soon"})),
            ["start_at"]
        );
    }

    #[test]
    fn bad_time_zones_are_refused_on_the_timezone_field() {
        for zone in ["America/New_Yrok", "Mars/Phobos", "PST", ""] {
            assert_eq!(
                error_fields(json!({"cron": "0 9 * * *", "timezone": zone})),
                ["timezone"],
                "{zone:?}"
            );
        }
    }

    #[test]
    fn instants_are_bounded_and_rounded_up_to_the_microsecond() {
        assert!(parse_instant(&json!("1969-12-31T23:59:59Z")).is_err());
        assert!(parse_instant(&json!("4000-01-01T00:00:00Z")).is_err());
        assert_eq!(LATEST_INSTANT, ts("4000-01-01T00:00:00Z"));
        assert_eq!(
            parse_instant(&json!("2027-01-01T00:00:00.000000001Z")).unwrap(),
            ts("2027-01-01T00:00:00.000001Z")
        );
    }

    #[test]
    fn a_cron_match_in_a_spring_forward_gap_fires_when_the_gap_ends() {
        let shift = schedule(json!({"cron": "30 2 * * *", "timezone": "America/New_York"}));
        let after = ts("2027-03-14T06:30:00Z");
        assert_eq!(
            shift.preview(after, 2),
            [ts("2027-03-14T07:00:00Z"), ts("2027-03-15T06:30:00Z")]
        );
        assert_eq!(
            shift.next_fire(after, 1, after),
            Some(ts("2027-03-14T07:00:00Z"))
        );

        let skip = schedule(json!({"cron": "30 2 * * *", "timezone": "America/New_York",
                                   "dst_gap": "skip"}));
        assert_eq!(
            skip.next_fire(after, 1, after),
            Some(ts("2027-03-15T06:30:00Z"))
        );
    }

    #[test]
    fn a_cron_match_in_a_fall_back_overlap_fires_once_or_at_both_instants() {
        let after = ts("2027-11-06T12:00:00Z");
        let until = ts("2027-11-08T12:00:00Z");
        let earlier = schedule(json!({"cron": "30 1 * * *", "timezone": "America/New_York"}));
        assert_eq!(
            fires_between(&earlier, after, until),
            [ts("2027-11-07T05:30:00Z"), ts("2027-11-08T06:30:00Z")]
        );

        let both = schedule(json!({"cron": "30 1 * * *", "timezone": "America/New_York",
                                   "dst_overlap": "both"}));
        assert_eq!(
            fires_between(&both, after, until),
            [
                ts("2027-11-07T05:30:00Z"),
                ts("2027-11-07T06:30:00Z"),
                ts("2027-11-08T06:30:00Z")
            ]
        );
    }

    #[test]
    fn midnight_cron_schedules_follow_their_zone_across_dst() {
        let los_angeles = schedule(json!({"cron": "0 0 * * *", "timezone": "America/Los_Angeles"}));
        assert_eq!(
            los_angeles.preview(ts("2027-03-14T08:00:00Z"), 2),
            [ts("2027-03-15T07:00:00Z"), ts("2027-03-16T07:00:00Z")]
        );
        let chicago = schedule(json!({"cron": "0 0 * * 1-5", "timezone": "America/Chicago"}));
        let after = ts("2021-03-12T06:00:00Z");
        assert_eq!(
            chicago.next_fire(after, 1, after),
            Some(ts("2021-03-15T05:00:00Z"))
        );
    }

    #[test]
    fn a_leap_day_cron_schedule_fires_every_four_years() {
        let leap_day = schedule(json!({"cron": "0 9 29 2 *"}));
        let after = ts("2024-02-29T09:00:00Z");
        assert_eq!(
            fires_between(&leap_day, after, ts("2033-01-01T00:00:00Z")),
            [ts("2028-02-29T09:00:00Z"), ts("2032-02-29T09:00:00Z")]
        );
    }

    #[test]
    fn max_fires_and_end_at_complete_a_cron_timer() {
        let scheduled = ts("2027-01-01T09:00:00Z");
        let limited = schedule(json!({"cron": "0 9 * * *", "max_fires": 2}));
        assert_eq!(
            limited.next_fire(scheduled, 1, scheduled),
            Some(ts("2027-01-02T09:00:00Z"))
        );
        assert_eq!(limited.next_fire(scheduled, 2, scheduled), None);
        assert_eq!(limited.preview(ts("2026-12-31T00:00:00Z"), 10).len(), 2);

        let ending = schedule(json!({"cron": "0 9 * * *", "end_at": "2027-01-02T09:00:00Z"}));
        assert_eq!(
            ending.next_fire(scheduled, 1, scheduled),
            Some(ts("2027-01-02T09:00:00Z"))
        );
        assert_eq!(
            ending.next_fire(ts("2027-01-02T09:00:00Z"), 2, scheduled),
            None
        );
    }

    #[test]
    fn missed_cron_fires_follow_the_policy() {
        let scheduled = ts("2027-01-01T00:00:00Z");
        let now = ts("2027-01-01T00:00:10.500Z");
        let next = |on_missed: &str| {
            schedule(json!({"cron": "* * * * * *", "on_missed": on_missed}))
                .next_fire(scheduled, 1, now)
        };
        assert_eq!(next("fire_once"), Some(ts("2027-01-01T00:00:10Z")));
        assert_eq!(next("skip"), Some(ts("2027-01-01T00:00:11Z")));
        assert_eq!(next("fire_all"), Some(ts("2027-01-01T00:00:01Z")));
    }

    #[test]
    fn a_resumed_cron_timer_catches_up_by_its_policy() {
        let pending = ts("2027-01-04T09:00:00Z");
        let now = ts("2027-01-08T12:00:00Z");
        let resumed = |on_missed: &str| {
            schedule(json!({"cron": "0 9 * * *", "on_missed": on_missed}))
                .resume_fire(Some(pending), now)
        };
        assert_eq!(resumed("fire_once"), Some(ts("2027-01-08T09:00:00Z")));
        assert_eq!(resumed("skip"), Some(ts("2027-01-09T09:00:00Z")));
        assert_eq!(resumed("fire_all"), Some(pending));
    }

    #[test]
    fn a_past_start_at_makes_earlier_slots_missed_fires() {
        let defined = ts("2027-01-08T12:00:00Z");
        let first = |on_missed: &str| {
            schedule(
                json!({"cron": "0 9 * * *", "start_at": "2027-01-01T00:00:00Z",
                            "on_missed": on_missed}),
            )
            .first_fire(defined)
        };
        assert_eq!(first("fire_once"), Some(ts("2027-01-08T09:00:00Z")));
        assert_eq!(first("skip"), Some(ts("2027-01-09T09:00:00Z")));
        assert_eq!(first("fire_all"), Some(ts("2027-01-01T09:00:00Z")));
    }

    #[test]
    fn one_shot_schedules_fire_once() {
        let at = schedule(json!({"at": "2027-01-01T00:00:00Z"}));
        let instant = ts("2027-01-01T00:00:00Z");
        assert!(!at.is_recurring());
        assert_eq!(at.next_fire(instant, 1, instant), None);
        assert_eq!(
            at.resume_fire(Some(instant), ts("2027-02-01T00:00:00Z")),
            Some(instant)
        );
        assert_eq!(at.preview(ts("2026-01-01T00:00:00Z"), 5), [instant]);
        assert!(schedule(json!({"every": "1s"})).is_recurring());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// A generated pattern in a generated zone validates, round-trips, and previews
        /// strictly increasing fires.
        #[test]
        fn generated_cron_schedules_validate_and_preview_increasing_fires(
            minute in select(vec!["0", "*/5", "30", "0-10/3", "*"]),
            hour in select(vec!["*", "2", "1-3", "9-17", "*/6"]),
            day in select(vec!["*", "1", "L", "13", "29", "31"]),
            month in select(vec!["*", "FEB", "MAR-NOV", "*/2", "1,4,7,10"]),
            weekday in select(vec!["*", "MON-FRI", "SAT,SUN", "FRI#3", "5L"]),
            zone in select(vec![
                "UTC", "America/New_York", "Europe/Paris", "Australia/Sydney",
                "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu",
            ]),
            after in 1_767_225_600_i64..2_524_608_000,
        ) {
            // The 31st of February alone never matches, and is refused.
            prop_assume!(!(day == "31" && month == "FEB" && weekday == "*"));
            let pattern = format!("{minute} {hour} {day} {month} {weekday}");
            let input = json!({"cron": pattern, "timezone": zone, "dst_overlap": "both"});
            let schedule = Schedule::from_json(&input).unwrap();
            prop_assert_eq!(Schedule::from_stored(&schedule.to_json()).unwrap(), schedule.clone());

            let after = Timestamp::from_second(after).unwrap();
            let fires = schedule.preview(after, 6);
            prop_assert_eq!(fires.len(), 6);
            prop_assert!(fires[0] > after);
            prop_assert!(fires.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", fires);
        }
    }
}
