//! The AMQP contract of a fired event: routing key, message id, headers and body. Consumers
//! depend on every name here; change none of them without a new contract version.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub const CONTENT_TYPE: &str = "application/json";
pub const HEADER_TIMER_ID: &str = "clockworks-timer-id";
pub const HEADER_NAMESPACE: &str = "clockworks-namespace";
pub const HEADER_SCHEDULED_AT: &str = "clockworks-scheduled-at";
pub const HEADER_FIRE_SEQ: &str = "clockworks-fire-seq";

/// The body of a fired event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredEvent {
    pub timer_id: String,
    pub namespace: String,
    pub group: Option<String>,
    /// 1 for a timer's first fire, then 2, 3, ...
    pub fire_seq: i64,
    /// The instant the fire was due.
    pub scheduled_at: Timestamp,
    /// The instant the worker published it.
    pub fired_at: Timestamp,
    pub payload: Value,
}

/// The routing key a fire is published with: `<namespace>.<routing_key>`.
pub fn routing_key(namespace: &str, routing_key: &str) -> String {
    format!("{namespace}.{routing_key}")
}

/// The message id of fire `fire_seq` of the timer incarnation `timer_uid`. The same fire
/// always gets the same id, so a consumer can drop a redelivered duplicate; a timer id that
/// is deleted and used again gets a new incarnation and so new message ids.
pub fn message_id(timer_uid: Uuid, fire_seq: i64) -> String {
    Uuid::new_v5(&timer_uid, &fire_seq.to_be_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_per_fire_and_differ_between_fires() {
        let uid = Uuid::now_v7();
        assert_eq!(message_id(uid, 1), message_id(uid, 1));
        assert_ne!(message_id(uid, 1), message_id(uid, 2));
        assert_ne!(message_id(uid, 1), message_id(Uuid::now_v7(), 1));
    }
}
