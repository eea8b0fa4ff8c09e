//! `clockworks-worker tail`: watch a namespace's fired events from a terminal. A temporary,
//! exclusive queue is bound to the exchange for as long as the command runs; each event is
//! printed as one line (or, with `--json`, as its raw body).
//!
//! Lateness is measured with this machine's clock against the event's `scheduled_at`, so it is
//! only as good as the two clocks' agreement.

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use clockworks::message::FiredEvent;
use futures::StreamExt;
use jiff::Timestamp;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};

use crate::config::TailArgs;
use crate::publish::CONNECT_TIMEOUT;
use crate::shutdown;

/// Prints fired events until the operator stops it or the broker connection ends.
pub async fn run(args: TailArgs) -> Result<()> {
    let binding = args.binding().map_err(|problem| anyhow!(problem))?;
    let exchange = ShortString::try_new(args.amqp.exchange.as_str())
        .map_err(|_| anyhow!("--exchange is longer than 255 bytes"))?;
    let binding =
        ShortString::try_new(binding).map_err(|_| anyhow!("--binding is longer than 255 bytes"))?;

    let connection = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&args.amqp.amqp_url, ConnectionProperties::default()),
    )
    .await
    .context("the broker did not answer in time")?
    .context("connecting to the broker")?;
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
            exchange.clone(),
            binding.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| {
            format!("binding to exchange {exchange}; a worker declares it when it first starts")
        })?;
    let mut deliveries = channel
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
    tracing::info!(%exchange, %binding, "tailing fired events");

    let stop = shutdown::requested();
    tokio::pin!(stop);
    let mut out = std::io::stdout().lock();
    loop {
        tokio::select! {
            () = &mut stop => break,
            delivery = deliveries.next() => {
                let Some(delivery) = delivery else { break };
                let delivery = delivery.context("receiving from the broker")?;
                let line = if args.json {
                    String::from_utf8_lossy(&delivery.data).into_owned()
                } else {
                    summary(delivery.routing_key.as_str(), &delivery.data, Timestamp::now())
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // The reader went away (`| head`): nothing left to print to.
                    break;
                }
            }
        }
    }

    let _ = connection.close(200, "tail done".into()).await;
    Ok(())
}

/// One line: received time, routing key, timer id, fire sequence, scheduled time, lateness
/// in milliseconds and the payload as JSON.
fn summary(routing_key: &str, body: &[u8], received_at: Timestamp) -> String {
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
}
