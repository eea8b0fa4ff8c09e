//! Watching a namespace's fired events from a terminal, as `clockworks-worker tail` and
//! `clockworks tail` do. A temporary, exclusive queue is bound to the exchange for as long as
//! the watcher runs; each event is printed as one line (or as its raw body).
//!
//! Lateness is measured with this machine's clock against the event's `scheduled_at`, so it is
//! only as good as the two clocks' agreement.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties, Consumer};
use thiserror::Error;

use crate::message::FiredEvent;

/// Longest wait for the broker to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest exchange name or binding pattern AMQP allows, in bytes.
const MAX_AMQP_NAME_LEN: usize = 255;
/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

/// Why watching stopped or could not start.
#[derive(Debug, Error)]
pub enum TailError {
    #[error("--binding {binding:?} must start with the namespace, as in \"{namespace}.#\"")]
    BindingOutsideNamespace { binding: String, namespace: String },
    #[error("{what} is longer than {MAX_AMQP_NAME_LEN} bytes")]
    NameTooLong { what: &'static str },
    #[error("the broker did not answer within {0:?}")]
    ConnectTimedOut(Duration),
    #[error("connecting to the broker: {0}")]
    Connect(#[source] lapin::Error),
    #[error("binding to exchange {exchange}: {source}; a worker declares it when it first starts")]
    Bind {
        exchange: String,
        #[source]
        source: lapin::Error,
    },
    #[error("the broker: {0}")]
    Broker(#[from] lapin::Error),
}

/// The binding pattern for `namespace`: `pattern` when it stays within the namespace, else
/// every event of the namespace (`<namespace>.#`).
pub fn binding(namespace: &str, pattern: Option<&str>) -> Result<String, TailError> {
    let prefix = format!("{namespace}.");
    match pattern {
        None => Ok(format!("{prefix}#")),
        Some(pattern) if pattern.starts_with(&prefix) => Ok(pattern.to_owned()),
        Some(pattern) => Err(TailError::BindingOutsideNamespace {
            binding: pattern.to_owned(),
            namespace: namespace.to_owned(),
        }),
    }
}

/// A queue bound to the exchange and consumed, ready to print what arrives.
pub struct Tail {
    connection: Connection,
    deliveries: Consumer,
}

impl Tail {
    /// Connects, declares a temporary queue and binds it with `binding`. Events published
    /// after this returns are printed by [`Tail::print_until`].
    pub async fn bind(amqp_url: &str, exchange: &str, binding: &str) -> Result<Tail, TailError> {
        let exchange_name = ShortString::try_new(exchange)
            .map_err(|_| TailError::NameTooLong { what: "--exchange" })?;
        let binding = ShortString::try_new(binding)
            .map_err(|_| TailError::NameTooLong { what: "--binding" })?;

        let connect = Connection::connect(amqp_url, ConnectionProperties::default());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| TailError::ConnectTimedOut(CONNECT_TIMEOUT))?
            .map_err(TailError::Connect)?;

        // Exclusive and auto-deleted: the queue lives exactly as long as this watcher.
        let channel = connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange_name,
                binding,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| TailError::Bind {
                exchange: exchange.to_owned(),
                source,
            })?;
        let deliveries = channel
            .basic_consume(
                queue.name().clone(),
                "clockworks-tail".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;

        Ok(Tail {
            connection,
            deliveries,
        })
    }

    /// Writes one line per event to `out` (the raw body when `raw`, else [`summary`]) until
    /// `stop` completes, the broker connection ends or the reader of `out` goes away.
    pub async fn print_until(
        mut self,
        stop: impl Future<Output = ()>,
        raw: bool,
        out: &mut impl Write,
    ) -> Result<(), TailError> {
        tokio::pin!(stop);
        let outcome = loop {
            let delivery: Option<Result<Delivery, lapin::Error>> = tokio::select! {
                () = &mut stop => break Ok(()),
                delivery = self.deliveries.next() => delivery,
            };
            let delivery = match delivery {
                None => break Ok(()),
                Some(Err(err)) => break Err(TailError::Broker(err)),
                Some(Ok(delivery)) => delivery,
            };

            let line = if raw {
                String::from_utf8_lossy(&delivery.data).into_owned()
            } else {
                summary(
                    delivery.routing_key.as_str(),
                    &delivery.data,
                    Timestamp::now(),
                )
            };
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                // The reader went away (`| head`): nothing left to print to.
                break Ok(());
            }
        };

        let _ = self
            .connection
            .close(REPLY_SUCCESS, "tail done".into())
            .await;
        outcome
    }
}

/// One line: received time, routing key, timer id, fire sequence, scheduled time, lateness
/// in milliseconds and the payload as JSON.
pub fn summary(routing_key: &str, body: &[u8], received_at: Timestamp) -> String {
    match serde_json::from_slice::<FiredEvent>(body) {
        Ok(event) => {
            let lateness_ms = received_at.duration_since(event.scheduled_at).as_millis();
            format!(
                "{received_at} {routing_key} {} fire_seq={} scheduled_at={} lateness_ms={} {}",
                event.timer_id, event.fire_seq, event.scheduled_at, lateness_ms, event.payload
            )
        }
        Err(_) => format!(
            "{received_at} {routing_key} (not a fired event) {}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fired_event_reads_as_one_line_with_its_lateness() {
        let body = json!({
            "timer_id": "order-42",
            "namespace": "acme",
            "group": null,
            "fire_seq": 1,
            "scheduled_at": "2027-01-01T09:00:00Z",
            "fired_at": "2027-01-01T09:00:00.010Z",
            "payload": {"order": 42}
        });
        let body = serde_json::to_vec(&body).unwrap();
        let line = summary(
            "acme.orders.reminder",
            &body,
            "2027-01-01T09:00:00.012Z".parse().unwrap(),
        );
        assert_eq!(
            line,
            "2027-01-01T09:00:00.012Z acme.orders.reminder order-42 fire_seq=1 \
             scheduled_at=2027-01-01T09:00:00Z lateness_ms=12 {\"order\":42}"
        );
    }

    #[test]
    fn a_foreign_message_is_shown_as_it_is() {
        let line = summary("acme.x", br#"{"hello":1}"#, Timestamp::UNIX_EPOCH);
        assert!(line.contains("(not a fired event) {\"hello\":1}"), "{line}");
    }

    #[test]
    fn the_binding_covers_the_namespace_unless_a_pattern_within_it_is_given() {
        assert_eq!(binding("acme", None).unwrap(), "acme.#");
        assert_eq!(
            binding("acme", Some("acme.orders.*")).unwrap(),
            "acme.orders.*"
        );
        assert!(binding("acme", Some("other.#")).is_err());
        assert!(binding("acme", Some("acmeother.#")).is_err());
    }
}
