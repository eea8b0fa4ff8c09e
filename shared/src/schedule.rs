//! When a timer fires. A schedule is validated once, when a client defines it, and stored in
//! its canonical JSON form; the worker reads it back to compute each next fire.
//!
//! - `{"at": "<RFC 3339 instant>"}`: once, at that instant (in the past: at once).
//! - `{"after": "30s"}`: once, that long after the timer was defined.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::duration::Millis;
use crate::validation::{Errors, FieldError};

/// A validated schedule in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Schedule {
    At { at: Timestamp },
    After { after: Millis },
}

impl Schedule {
    /// Validates a schedule object as a client sent it. Every error names its field relative
    /// to the schedule object (`at`, `after`); the caller adds the enclosing path.
    pub fn from_json(value: &Value) -> Result<Schedule, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "must be an object with one of \"at\" or \"after\"",
            )]);
        };
        let kinds: Vec<&str> = ["at", "after"]
            .into_iter()
            .filter(|kind| object.contains_key(*kind))
            .collect();
        match kinds.as_slice() {
            ["at"] => parse_at(object),
            ["after"] => parse_after(object),
            [] => Err(vec![FieldError::new(
                "",
                "must have one of \"at\" or \"after\"",
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

    /// The canonical JSON form, stored and returned to clients.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a schedule always serializes")
    }

    /// The first fire of a timer defined (created or replaced) at `defined_at`, or `None`
    /// when the schedule has nothing left to fire.
    pub fn first_fire(&self, defined_at: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::At { at } => Some(*at),
            Schedule::After { after } => defined_at.checked_add(after.as_signed_duration()).ok(),
        }
    }

    /// The fire after the one scheduled at `scheduled`, which was fire number `fire_count`
    /// (counting from 1), given the database's `now`. `None` completes the timer.
    pub fn next_fire(
        &self,
        _scheduled: Timestamp,
        _fire_count: i64,
        _now: Timestamp,
    ) -> Option<Timestamp> {
        match self {
            Schedule::At { .. } | Schedule::After { .. } => None,
        }
    }

    /// Whether this schedule fires more than once.
    pub fn is_recurring(&self) -> bool {
        false
    }
}

fn reject_unknown(object: &Map<String, Value>, allowed: &[&str], errors: &mut Errors) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(key.clone(), "is not a field of this kind of schedule");
        }
    }
}

fn parse_at(object: &Map<String, Value>) -> Result<Schedule, Vec<FieldError>> {
    let mut errors = Errors::default();
    reject_unknown(object, &["at"], &mut errors);
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
    reject_unknown(object, &["after"], &mut errors);
    match Millis::from_json(&object["after"]) {
        Ok(after) => errors.into_result(Schedule::After { after }),
        Err(detail) => {
            errors.add("after", detail);
            Err(errors.into_vec())
        }
    }
}

/// Reads an RFC 3339 instant with an explicit offset (`Z` or `+02:00`).
pub fn parse_instant(value: &Value) -> Result<Timestamp, String> {
    let Some(text) = value.as_str() else {
        return Err("must be an RFC 3339 instant such as \"2027-01-01T09:00:00Z\"".to_owned());
    };
    text.parse::<Timestamp>().map_err(|_| {
        format!("{text:?} is not an RFC 3339 instant with an offset, such as \"2027-01-01T09:00:00Z\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn at_and_after_round_trip_through_their_stored_form() {
        for input in [json!({"at": "2027-01-01T09:00:00Z"}), json!({"after": "PT90M"})] {
            let schedule = Schedule::from_json(&input).unwrap();
            let stored = schedule.to_json();
            assert_eq!(Schedule::from_stored(&stored).unwrap(), schedule);
        }
        assert_eq!(
            Schedule::from_json(&json!({"after": "PT90M"})).unwrap().to_json(),
            json!({"after": "1h30m"})
        );
    }

    #[test]
    fn after_is_due_exactly_its_delay_after_definition() {
        let defined: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let schedule = Schedule::from_json(&json!({"after": 4_294_967_296_i64})).unwrap();
        let due = schedule.first_fire(defined).unwrap();
        assert_eq!(due.as_millisecond() - defined.as_millisecond(), 4_294_967_296);
    }

    #[test]
    fn schedules_with_no_kind_two_kinds_or_stray_fields_are_refused() {
        assert!(Schedule::from_json(&json!({})).is_err());
        assert!(Schedule::from_json(&json!({"at": "2027-01-01T00:00:00Z", "after": "1s"})).is_err());
        let errors = Schedule::from_json(&json!({"at": "2027-01-01T00:00:00Z", "x": 1})).unwrap_err();
        assert_eq!(errors[0].field, "x");
        let errors = Schedule::from_json(&json!({"at": "tomorrow"})).unwrap_err();
        assert_eq!(errors[0].field, "at");
    }
}
