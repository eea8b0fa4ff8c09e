//! Timers: the definition a client sends, checked field by field, and the stored row as the
//! API shows it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::duration::Millis;
use crate::schedule::{MAX_PREVIEW_FIRES, Schedule};
use crate::validation::{Errors, FieldError};

/// Longest client-chosen timer id.
pub const MAX_ID_LEN: usize = 128;
/// Longest group label.
pub const MAX_GROUP_LEN: usize = 128;
/// Longest routing key a client may choose; the namespace and a dot are put in front of it.
pub const MAX_ROUTING_KEY_LEN: usize = 192;
/// Default limit of a payload's size, serialized as JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most extra AMQP headers one timer may carry.
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_NAME_LEN: usize = 128;
pub const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Prefix of the headers the service sets itself; clients may not set headers with it.
pub const RESERVED_HEADER_PREFIX: &str = "clockworks-";
/// The shortest `expire_after`. Every fire is some milliseconds late (claim, publish,
/// confirm), so a shorter span would expire fires that are on time.
pub const MIN_EXPIRE_AFTER: Millis = Millis::SECOND;

/// Fields the service sets; a client that sends them is told they cannot be written.
const READ_ONLY_FIELDS: [&str; 9] = [
    "state",
    "next_fire_at",
    "triggered_at",
    "fire_count",
    "last_fired_at",
    "failure_reason",
    "created_at",
    "updated_at",
    "version",
];

/// What a client chooses about a timer. Two definitions are the same timer when they are
/// equal; that decides whether a repeated create is a safe retry or a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerDefinition {
    pub group: Option<String>,
    pub schedule: Schedule,
    pub routing_key: String,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
    /// A fire later than its scheduled instant plus this span is recorded as expired and not
    /// published.
    pub expire_after: Option<Millis>,
}

/// A create request: a definition and, optionally, the client's own id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub id: Option<String>,
    pub definition: TimerDefinition,
}

/// Limits that an operator may tune.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

impl NewTimer {
    /// Checks a timer object as a client sent it and reports every problem at once.
    pub fn from_json(value: &Value, limits: Limits) -> Result<NewTimer, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "must be a JSON object describing a timer",
            )]);
        };
        let mut errors = Errors::default();

        for key in object.keys() {
            if READ_ONLY_FIELDS.contains(&key.as_str()) {
                errors.add(key.clone(), "is set by the service and cannot be written");
            } else if ![
                "id",
                "group",
                "schedule",
                "routing_key",
                "payload",
                "headers",
                "expire_after",
            ]
            .contains(&key.as_str())
            {
                errors.add(key.clone(), "is not a field of a timer");
            }
        }

        let id = optional_string(object, "id", &mut errors)
            .filter(|id| check(validate_id(id), "id", &mut errors));
        let group = optional_string(object, "group", &mut errors)
            .filter(|group| check(validate_group(group), "group", &mut errors));
        let routing_key = match object.get("routing_key") {
            None | Some(Value::Null) => {
                errors.add("routing_key", "is required");
                None
            }
            Some(Value::String(key)) => {
                check(validate_routing_key(key), "routing_key", &mut errors).then(|| key.clone())
            }
            Some(_) => {
                errors.add("routing_key", "must be a string");
                None
            }
        };
        let schedule = match object.get("schedule") {
            None | Some(Value::Null) => {
                errors.add("schedule", "is required");
                None
            }
            Some(schedule) => match Schedule::from_json(schedule) {
                Ok(schedule) => Some(schedule),
                Err(field_errors) => {
                    errors.extend(
                        field_errors
                            .into_iter()
                            .map(|error| error.within("schedule")),
                    );
                    None
                }
            },
        };
        let payload = object.get("payload").cloned().unwrap_or(Value::Null);
        let payload_size = payload.to_string().len();
        if payload_size > limits.max_payload_bytes {
            errors.add(
                "payload",
                format!(
                    "is {payload_size} bytes as JSON; the limit is {} bytes",
                    limits.max_payload_bytes
                ),
            );
        }
        let headers = parse_headers(object.get("headers"), &mut errors);
        let expire_after = parse_expire_after(object.get("expire_after"), &mut errors);

        match (schedule, routing_key) {
            (Some(schedule), Some(routing_key)) if errors.is_empty() => Ok(NewTimer {
                id,
                definition: TimerDefinition {
                    group,
                    schedule,
                    routing_key,
                    payload,
                    headers,
                    expire_after,
                },
            }),
            _ => Err(errors.into_vec()),
        }
    }
}

fn check(result: Result<(), String>, field: &str, errors: &mut Errors) -> bool {
    match result {
        Ok(()) => true,
        Err(detail) => {
            errors.add(field, detail);
            false
        }
    }
}

fn optional_string(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut Errors,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    }
}

/// A timer id: 1 to 128 characters of `A-Z a-z 0-9 . _ ~ : -`, safe in a URL path as is.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must be 1 to {MAX_ID_LEN} characters long"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~:-".contains(&b))
    {
        return Err("may contain only letters, digits and . _ ~ : -".to_owned());
    }
    Ok(())
}

/// A group label: 1 to 128 characters, no control characters.
pub fn validate_group(group: &str) -> Result<(), String> {
    if group.is_empty() || group.len() > MAX_GROUP_LEN {
        return Err(format!("must be 1 to {MAX_GROUP_LEN} characters long"));
    }
    if group.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// A routing key: dot-separated words of letters, digits, `_` and `-`. Wildcards (`*`, `#`)
/// belong to bindings, not to published messages.
pub fn validate_routing_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_ROUTING_KEY_LEN {
        return Err(format!(
            "must be 1 to {MAX_ROUTING_KEY_LEN} characters long"
        ));
    }
    let word_ok = |word: &str| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !key.split('.').all(word_ok) {
        return Err(
            "must be dot-separated words of letters, digits, _ and - (no wildcards)".to_owned(),
        );
    }
    Ok(())
}

fn parse_headers(value: Option<&Value>, errors: &mut Errors) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    let object = match value {
        None | Some(Value::Null) => return headers,
        Some(Value::Object(object)) => object,
        Some(_) => {
            errors.add("headers", "must be an object of string values");
            return headers;
        }
    };
    if object.len() > MAX_HEADERS {
        errors.add("headers", format!("may hold at most {MAX_HEADERS} headers"));
    }
    for (name, value) in object {
        let field = format!("headers.{name}");
        if name.is_empty()
            || name.len() > MAX_HEADER_NAME_LEN
            || !name.bytes().all(|b| b.is_ascii_graphic())
        {
            errors.add(
                field,
                format!("names must be 1 to {MAX_HEADER_NAME_LEN} printable ASCII characters"),
            );
        } else if name
            .to_ascii_lowercase()
            .starts_with(RESERVED_HEADER_PREFIX)
        {
            errors.add(field, "names starting with clockworks- are reserved");
        } else {
            match value {
                Value::String(text) if text.len() <= MAX_HEADER_VALUE_LEN => {
                    headers.insert(name.clone(), text.clone());
                }
                Value::String(_) => errors.add(
                    field,
                    format!("must be at most {MAX_HEADER_VALUE_LEN} bytes"),
                ),
                _ => errors.add(field, "must be a string"),
            }
        }
    }
    headers
}

/// Reads `expire_after`: a duration of at least [`MIN_EXPIRE_AFTER`], or null for none.
fn parse_expire_after(value: Option<&Value>, errors: &mut Errors) -> Option<Millis> {
    let value = value.filter(|value| !value.is_null())?;
    match Millis::from_json(value) {
        Ok(span) if span < MIN_EXPIRE_AFTER => {
            errors.add(
                "expire_after",
                format!("must be at least {MIN_EXPIRE_AFTER}"),
            );
            None
        }
        Ok(span) => Some(span),
        Err(detail) => {
            errors.add("expire_after", detail);
            None
        }
    }
}

/// Where a timer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerState {
    /// Waiting for its next fire.
    Scheduled,
    /// Held by a client; it does not fire until resumed.
    Paused,
    /// Fired for the last time (or has nothing left to fire).
    Completed,
    /// Set aside because it could not be processed; `failure_reason` says why.
    Failed,
}

impl TimerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerState::Scheduled => "scheduled",
            TimerState::Paused => "paused",
            TimerState::Completed => "completed",
            TimerState::Failed => "failed",
        }
    }
}

impl fmt::Display for TimerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimerState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "scheduled" => Ok(TimerState::Scheduled),
            "paused" => Ok(TimerState::Paused),
            "completed" => Ok(TimerState::Completed),
            "failed" => Ok(TimerState::Failed),
            other => Err(format!(
                "unknown state {other:?}: expected scheduled, paused, completed or failed"
            )),
        }
    }
}

/// A stored timer, as read from the database. `state` and `next_fire_at` are the timer's
/// own, those of its schedule, even while a trigger is pending (`triggered_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub namespace: String,
    pub id: String,
    pub uid: Uuid,
    pub group: Option<String>,
    /// The canonical schedule JSON. Kept as stored so that a row written behind the api's
    /// back can still be shown and set aside.
    pub schedule: Value,
    pub routing_key: String,
    pub payload: Value,
    pub headers: Value,
    pub expire_after: Option<Millis>,
    pub state: TimerState,
    /// The slot the schedule waits for: the next fire of a scheduled timer, the slot a
    /// paused one was waiting for when it was paused. `None` once completed or failed.
    pub next_fire_at: Option<Timestamp>,
    /// When a fire requested out of schedule (`/trigger`) and not made yet was requested;
    /// it fires at once, then the timer goes on with `state` and `next_fire_at`.
    pub triggered_at: Option<Timestamp>,
    pub fire_count: i64,
    pub last_fired_at: Option<Timestamp>,
    pub failure_reason: Option<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Timer {
    /// The timer as the HTTP API shows it.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "id": self.id,
            "group": self.group,
            "schedule": self.schedule,
            "routing_key": self.routing_key,
            "payload": self.payload,
            "headers": self.headers,
            "expire_after": self.expire_after.map(|span| span.to_string()),
            "state": self.state.as_str(),
            "next_fire_at": self.next_fire_at,
            "fire_count": self.fire_count,
            "last_fired_at": self.last_fired_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        });
        if let Some(triggered_at) = self.triggered_at {
            body["triggered_at"] = json!(triggered_at);
        }
        if let Some(reason) = &self.failure_reason {
            body["failure_reason"] = Value::String(reason.clone());
        }
        body
    }

    /// The next fires of this timer as its schedule would make them if none were missed: the
    /// slot it waits for (`next_fire_at`, in the past for a long-paused timer), then the
    /// slots after it, within the schedule's `end_at` and what is left of `max_fires`. At
    /// most `count`, at most [`MAX_PREVIEW_FIRES`]. A completed or failed timer has none; a
    /// pending trigger is not part of the schedule and is not listed.
    pub fn upcoming_fires(&self, count: usize) -> Result<Vec<Timestamp>, String> {
        let Some(pending) = self.next_fire_at else {
            return Ok(Vec::new());
        };
        let schedule = Schedule::from_stored(&self.schedule)?;
        let left = schedule.max_fires().map_or(usize::MAX, |max_fires| {
            usize::try_from(max_fires.saturating_sub(self.fire_count)).unwrap_or(0)
        });
        let count = count.min(MAX_PREVIEW_FIRES).min(left);
        if count == 0 {
            return Ok(Vec::new());
        }

        let mut fires = vec![pending];
        if schedule.is_recurring() {
            fires.extend(schedule.preview(pending, count - 1));
        }
        Ok(fires)
    }

    /// Whether this stored timer has exactly `definition` (the test for a safe retry).
    pub fn has_definition(&self, definition: &TimerDefinition) -> bool {
        self.group == definition.group
            && self.schedule == definition.schedule.to_json()
            && self.routing_key == definition.routing_key
            && self.payload == definition.payload
            && self.headers == json!(definition.headers)
            && self.expire_after == definition.expire_after
    }
}

/// A fresh id for a timer whose client did not choose one: a UUIDv7, which sorts by time.
pub fn generate_id() -> String {
    Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|error| error.field.as_str()).collect()
    }

    #[test]
    fn a_complete_timer_is_accepted() {
        let timer = NewTimer::from_json(
            &json!({
                "id": "order-42",
                "group": "orders",
                "schedule": {"after": "30s"},
                "routing_key": "orders.reminder",
                "payload": {"order": 42},
                "headers": {"trace-id": "abc"}
            }),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(timer.id.as_deref(), Some("order-42"));
        assert_eq!(timer.definition.headers["trace-id"], "abc");
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = NewTimer::from_json(
            &json!({
                "id": "no spaces",
                "schedule": {"at": "soon"},
                "routing_key": "a.*",
                "headers": {"clockworks-x": "y", "n": 1},
                "colour": "red",
                "version": 3
            }),
            Limits::default(),
        )
        .unwrap_err();
        let mut named = fields(&errors);
        named.sort();
        assert_eq!(
            named,
            [
                "colour",
                "headers.clockworks-x",
                "headers.n",
                "id",
                "routing_key",
                "schedule.at",
                "version"
            ]
        );
    }

    #[test]
    fn a_payload_over_the_limit_is_refused() {
        let errors = NewTimer::from_json(
            &json!({"schedule": {"after": "1s"}, "routing_key": "k", "payload": "x".repeat(100)}),
            Limits {
                max_payload_bytes: 64,
            },
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["payload"]);
    }

    #[test]
    fn missing_required_fields_are_named() {
        let errors = NewTimer::from_json(&json!({}), Limits::default()).unwrap_err();
        assert_eq!(fields(&errors), ["routing_key", "schedule"]);
    }

    fn stored(schedule: Value, next_fire_at: &str, fire_count: i64) -> Timer {
        let instant: Timestamp = next_fire_at.parse().unwrap();
        Timer {
            namespace: "acme".to_owned(),
            id: "t1".to_owned(),
            uid: Uuid::now_v7(),
            group: None,
            schedule: Schedule::from_json(&schedule).unwrap().to_json(),
            routing_key: "k".to_owned(),
            payload: Value::Null,
            headers: json!({}),
            expire_after: None,
            state: TimerState::Scheduled,
            next_fire_at: Some(instant),
            triggered_at: None,
            fire_count,
            last_fired_at: None,
            failure_reason: None,
            version: 1,
            created_at: instant,
            updated_at: instant,
        }
    }

    #[test]
    fn upcoming_fires_start_at_the_pending_slot_and_stay_on_the_grid() {
        let timer = stored(json!({"every": "1m"}), "2027-01-01T00:00:30Z", 4);
        let fires: Vec<String> = timer
            .upcoming_fires(3)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            fires,
            [
                "2027-01-01T00:00:30Z",
                "2027-01-01T00:01:30Z",
                "2027-01-01T00:02:30Z"
            ]
        );
    }

    #[test]
    fn upcoming_fires_follow_dst_and_what_is_left_of_max_fires() {
        let cron = json!({"cron": "30 2 * * *", "timezone": "America/New_York"});
        let timer = stored(cron, "2027-03-13T07:30:00Z", 0);
        let fires: Vec<String> = timer
            .upcoming_fires(3)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            fires,
            [
                "2027-03-13T07:30:00Z",
                "2027-03-14T07:00:00Z",
                "2027-03-15T06:30:00Z"
            ]
        );

        let limited = stored(
            json!({"every": "1s", "max_fires": 5}),
            "2027-01-01T00:00:00Z",
            3,
        );
        assert_eq!(limited.upcoming_fires(10).unwrap().len(), 2);
        let once = stored(json!({"after": "1h"}), "2027-01-01T00:00:00Z", 0);
        assert_eq!(once.upcoming_fires(10).unwrap().len(), 1);
    }

    #[test]
    fn expire_after_is_a_duration_of_at_least_a_second() {
        let with = |expire_after: Value| {
            NewTimer::from_json(
                &json!({"schedule": {"every": "1m"}, "routing_key": "k",
                        "expire_after": expire_after}),
                Limits::default(),
            )
        };
        let timer = with(json!("PT90S")).unwrap();
        assert_eq!(
            timer.definition.expire_after,
            Some(Millis::from_millis(90_000).unwrap())
        );
        assert_eq!(with(Value::Null).unwrap().definition.expire_after, None);
        for refused in [json!("500ms"), json!(0), json!("soon"), json!(-1)] {
            assert_eq!(fields(&with(refused).unwrap_err()), ["expire_after"]);
        }
    }
}
