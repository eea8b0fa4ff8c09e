//! One fire of one claimed timer: the AMQP message the contract prescribes (see
//! [`clockworks::message`]), where the timer's schedule goes next, and whether the fire came
//! too late to be published (`expire_after`). Building it touches neither the database nor
//! the broker; a timer it cannot be built for is set aside.
//!
//! A fire requested out of schedule (`/trigger`) does not advance the schedule: the timer
//! goes back to the slot it was waiting for.
//!
//! Headers: `clockworks-timer-id`, `clockworks-namespace` and `clockworks-scheduled-at`
//! (RFC 3339) are strings; `clockworks-fire-seq` is a long-long integer. The timer's own
//! headers follow as strings; a name the service reserves never overrides the service's own.
//! The timer's headers are held to the api's limits again here, because all of a message's
//! headers must fit in one AMQP frame: a row written behind the api's back with larger ones
//! would make the broker refuse the whole batch, again and again, if it were not set aside.

use clockworks::message::{
    self, CONTENT_TYPE, FiredEvent, HEADER_FIRE_SEQ, HEADER_NAMESPACE, HEADER_SCHEDULED_AT,
    HEADER_TIMER_ID,
};
use clockworks::schedule::Schedule;
use clockworks::store::firing::{ClaimedTimer, FiredTimer, SetAside};
use clockworks::timer::{MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_HEADERS};
use jiff::{SignedDuration, Timestamp};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde_json::Value;
use uuid::Uuid;

/// AMQP `delivery_mode` of a message the broker writes to disk.
const PERSISTENT: u8 = 2;

/// A fire ready to publish.
#[derive(Debug, Clone)]
pub struct Fire {
    pub uid: Uuid,
    pub fire_seq: i64,
    pub due_at: Timestamp,
    /// The fire after this one, or `None` when this is the last.
    pub next_fire_at: Option<Timestamp>,
    /// Later than the timer's `expire_after` allows: recorded as expired, never published.
    pub expired: bool,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

impl Fire {
    /// Builds the fire of `timer` published at `fired_at`, with its next fire computed from
    /// the database's `now`. A timer that cannot be fired comes back set aside, with why.
    pub fn build(
        timer: ClaimedTimer,
        now: Timestamp,
        fired_at: Timestamp,
    ) -> Result<Fire, SetAside> {
        let fire_seq = timer.fire_count + 1;
        let route = match Route::of(&timer, fire_seq, now, fired_at) {
            Ok(route) => route,
            Err(reason) => {
                tracing::warn!(
                    timer.namespace = %timer.namespace,
                    timer.id = %timer.id,
                    timer.uid = %timer.uid,
                    %reason,
                    "setting aside a timer that cannot be fired"
                );
                return Err(SetAside {
                    uid: timer.uid,
                    reason,
                });
            }
        };

        let expired = timer.expire_after_ms.is_some_and(|expire_after_ms| {
            fired_at.duration_since(timer.due_at) > SignedDuration::from_millis(expire_after_ms)
        });
        let event = FiredEvent {
            timer_id: timer.id,
            namespace: timer.namespace,
            group: timer.group,
            fire_seq,
            scheduled_at: timer.due_at,
            fired_at,
            payload: timer.payload,
        };
        let body = serde_json::to_vec(&event).expect("a fired event always serializes");

        Ok(Fire {
            uid: timer.uid,
            fire_seq,
            due_at: timer.due_at,
            next_fire_at: route.next_fire_at,
            expired,
            routing_key: route.routing_key,
            properties: route.properties,
            body,
        })
    }

    /// The fire as the database records it once the broker confirmed it.
    pub fn record(&self, fired_at: Timestamp) -> FiredTimer {
        FiredTimer {
            uid: self.uid,
            fire_seq: self.fire_seq,
            scheduled_at: self.due_at,
            fired_at,
            next_fire_at: self.next_fire_at,
        }
    }
}

/// The parts of a fire that can fail to build: where the schedule goes next, the routing key
/// and the message properties.
struct Route {
    next_fire_at: Option<Timestamp>,
    routing_key: ShortString,
    properties: BasicProperties,
}

impl Route {
    fn of(
        timer: &ClaimedTimer,
        fire_seq: i64,
        now: Timestamp,
        fired_at: Timestamp,
    ) -> Result<Route, String> {
        let schedule = Schedule::from_stored(&timer.schedule)
            .map_err(|detail| format!("the stored schedule cannot be read: {detail}"))?;
        let next_fire_at = if timer.triggered {
            timer.deferred_next_fire_at
        } else {
            schedule.next_fire(timer.due_at, fire_seq, now)
        };

        let routing_key = message::routing_key(&timer.namespace, &timer.routing_key);
        let routing_key = ShortString::try_new(routing_key)
            .map_err(|_| "the routing key is longer than AMQP allows (255 bytes)".to_owned())?;

        let properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(message::message_id(timer.uid, fire_seq).into())
            .with_timestamp(u64::try_from(fired_at.as_second()).unwrap_or(0))
            .with_headers(headers(timer, fire_seq)?);
        Ok(Route {
            next_fire_at,
            routing_key,
            properties,
        })
    }
}

/// The timer's own headers, then the contract's, which win over any stored name clash.
fn headers(timer: &ClaimedTimer, fire_seq: i64) -> Result<FieldTable, String> {
    let mut table = FieldTable::default();
    match &timer.headers {
        Value::Null => {}
        Value::Object(own) if own.len() > MAX_HEADERS => {
            return Err(format!(
                "the stored headers are {} in number, more than the {MAX_HEADERS} allowed",
                own.len()
            ));
        }
        Value::Object(own) => {
            for (name, value) in own {
                let Value::String(text) = value else {
                    return Err(format!("header {name:?} is not a string"));
                };
                if name.len() > MAX_HEADER_NAME_LEN {
                    return Err(format!(
                        "header name {name:?} is longer than {MAX_HEADER_NAME_LEN} bytes"
                    ));
                }
                if text.len() > MAX_HEADER_VALUE_LEN {
                    return Err(format!(
                        "header {name:?} is longer than {MAX_HEADER_VALUE_LEN} bytes"
                    ));
                }
                table.insert(
                    name.as_str().into(),
                    AMQPValue::LongString(LongString::from(text.as_str())),
                );
            }
        }
        _ => return Err("the stored headers are not an object of strings".to_owned()),
    }

    let text = |value: &str| AMQPValue::LongString(LongString::from(value));
    table.insert(HEADER_TIMER_ID.into(), text(&timer.id));
    table.insert(HEADER_NAMESPACE.into(), text(&timer.namespace));
    table.insert(HEADER_SCHEDULED_AT.into(), text(&timer.due_at.to_string()));
    table.insert(HEADER_FIRE_SEQ.into(), AMQPValue::LongLongInt(fire_seq));
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claimed(schedule: Value, headers: Value) -> ClaimedTimer {
        ClaimedTimer {
            uid: Uuid::now_v7(),
            namespace: "acme".to_owned(),
            id: "order-42".to_owned(),
            group: Some("orders".to_owned()),
            schedule,
            routing_key: "orders.reminder".to_owned(),
            payload: json!({"order": 42}),
            headers,
            due_at: "2027-01-01T09:00:00Z".parse().unwrap(),
            fire_count: 0,
            triggered: false,
            deferred_next_fire_at: None,
            expire_after_ms: None,
        }
    }

    fn header<'a>(fire: &'a Fire, name: &str) -> &'a AMQPValue {
        fire.properties
            .headers()
            .as_ref()
            .and_then(|table| table.inner().get(name))
            .unwrap_or_else(|| panic!("header {name} is set"))
    }

    #[test]
    fn a_fire_carries_the_contract_message() {
        let timer = claimed(
            json!({"at": "2027-01-01T09:00:00Z"}),
            json!({"trace-id": "abc"}),
        );
        let uid = timer.uid;
        let now: Timestamp = "2027-01-01T09:00:00.010Z".parse().unwrap();
        let fired_at: Timestamp = "2027-01-01T09:00:00.012Z".parse().unwrap();

        let fire = Fire::build(timer, now, fired_at).unwrap();

        assert_eq!(fire.routing_key.as_str(), "acme.orders.reminder");
        assert_eq!(fire.fire_seq, 1);
        assert_eq!(fire.next_fire_at, None);
        let properties = &fire.properties;
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            CONTENT_TYPE
        );
        assert_eq!(
            properties.message_id().as_ref().unwrap().as_str(),
            message::message_id(uid, 1)
        );
        assert_eq!(properties.timestamp(), &Some(fired_at.as_second() as u64));
        assert_eq!(
            header(&fire, HEADER_TIMER_ID),
            &AMQPValue::LongString("order-42".into())
        );
        assert_eq!(
            header(&fire, HEADER_NAMESPACE),
            &AMQPValue::LongString("acme".into())
        );
        assert_eq!(
            header(&fire, HEADER_SCHEDULED_AT),
            &AMQPValue::LongString("2027-01-01T09:00:00Z".into())
        );
        assert_eq!(header(&fire, HEADER_FIRE_SEQ), &AMQPValue::LongLongInt(1));
        assert_eq!(
            header(&fire, "trace-id"),
            &AMQPValue::LongString("abc".into())
        );

        let body: FiredEvent = serde_json::from_slice(&fire.body).unwrap();
        assert_eq!(
            body,
            FiredEvent {
                timer_id: "order-42".to_owned(),
                namespace: "acme".to_owned(),
                group: Some("orders".to_owned()),
                fire_seq: 1,
                scheduled_at: "2027-01-01T09:00:00Z".parse().unwrap(),
                fired_at,
                payload: json!({"order": 42}),
            }
        );
    }

    #[test]
    fn a_stored_header_cannot_override_the_contract_headers() {
        let timer = claimed(
            json!({"at": "2027-01-01T09:00:00Z"}),
            json!({HEADER_TIMER_ID: "x"}),
        );
        let now = Timestamp::now();
        let fire = Fire::build(timer, now, now).unwrap();
        assert_eq!(
            header(&fire, HEADER_TIMER_ID),
            &AMQPValue::LongString("order-42".into())
        );
    }

    #[test]
    fn timers_that_cannot_be_fired_are_set_aside_with_a_reason() {
        let now = Timestamp::now();
        let cases = [
            (json!({"bogus": 1}), json!({}), "schedule"),
            (
                json!({"at": "2027-01-01T09:00:00Z"}),
                json!({"n": 1}),
                "not a string",
            ),
            (
                json!({"at": "2027-01-01T09:00:00Z"}),
                json!(["x"]),
                "not an object",
            ),
            (
                json!({"at": "2027-01-01T09:00:00Z"}),
                json!({"big": "x".repeat(MAX_HEADER_VALUE_LEN + 1)}),
                "longer than",
            ),
            (
                json!({"at": "2027-01-01T09:00:00Z"}),
                json!({"n".repeat(MAX_HEADER_NAME_LEN + 1): "x"}),
                "longer than",
            ),
            (
                json!({"at": "2027-01-01T09:00:00Z"}),
                Value::Object(
                    (0..=MAX_HEADERS)
                        .map(|n| (format!("h{n}"), json!("x")))
                        .collect(),
                ),
                "more than",
            ),
        ];
        for (schedule, headers, expected) in cases {
            let timer = claimed(schedule, headers);
            let uid = timer.uid;
            let set_aside = Fire::build(timer, now, now).unwrap_err();
            assert_eq!(set_aside.uid, uid);
            assert!(set_aside.reason.contains(expected), "{}", set_aside.reason);
        }

        let mut timer = claimed(json!({"at": "2027-01-01T09:00:00Z"}), json!({}));
        timer.routing_key = "k".repeat(300);
        assert!(
            Fire::build(timer, now, now)
                .unwrap_err()
                .reason
                .contains("routing key")
        );
    }

    #[test]
    fn a_triggered_fire_goes_back_to_the_slot_the_timer_was_waiting_for() {
        let mut timer = claimed(json!({"every": "1h"}), json!({}));
        let slot: Timestamp = "2027-01-01T10:30:00Z".parse().unwrap();
        timer.triggered = true;
        timer.deferred_next_fire_at = Some(slot);
        timer.fire_count = 4;
        let now: Timestamp = "2027-01-01T09:00:00.010Z".parse().unwrap();

        let fire = Fire::build(timer, now, now).unwrap();

        assert_eq!(fire.fire_seq, 5);
        assert_eq!(fire.next_fire_at, Some(slot));
    }

    #[test]
    fn a_fire_later_than_expire_after_is_expired_and_one_just_in_time_is_not() {
        let due: Timestamp = "2027-01-01T09:00:00Z".parse().unwrap();
        let fire_at = |late_ms: i64| {
            let mut timer = claimed(json!({"every": "1s"}), json!({}));
            timer.expire_after_ms = Some(2_000);
            let fired_at = due + SignedDuration::from_millis(late_ms);
            Fire::build(timer, fired_at, fired_at).unwrap()
        };
        assert!(!fire_at(2_000).expired);
        assert!(fire_at(2_001).expired);
        assert!(
            !Fire::build(claimed(json!({"every": "1s"}), json!({})), due, due)
                .unwrap()
                .expired
        );
    }
}
