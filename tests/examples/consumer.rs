//! A consumer of clockworks fired events, written the way an application would write one.
//!
//! It binds a queue to the fired-events exchange with `<namespace>.#`, prints one line per
//! event, drops duplicates by `message_id` and acknowledges each delivery only after it was
//! handled, so an event that was being handled when the consumer died is delivered again.
//!
//! Duplicates: clockworks delivers at least once, and a repeated fire carries the same
//! `message_id`. This consumer remembers the last [`RECENT_IDS`] ids in memory (a bounded
//! window, oldest forgotten first), which catches redeliveries that arrive close together.
//! The window is lost when the process restarts; an application whose effects must happen
//! once records the `message_id` in its own database, in the same transaction as the effect.
//!
//! ```sh
//! cargo run -p clockworks-tests --example consumer -- --namespace demo
//! cargo run -p clockworks-tests --example consumer -- --namespace demo --queue demo-reminders
//! ```

use std::collections::{HashSet, VecDeque};
use std::io::Write;

use anyhow::{Context, Result};
use clap::Parser;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties};
use serde::Deserialize;
use serde_json::Value;

/// Message ids remembered to drop duplicates.
const RECENT_IDS: usize = 10_000;
/// Deliveries the broker sends ahead of acknowledgements.
const PREFETCH: u16 = 100;

/// Prints the fired events of one clockworks namespace, each once.
#[derive(Debug, Parser)]
struct Args {
    /// RabbitMQ connection URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,

    /// The topic exchange clockworks publishes fired events to.
    #[arg(long, env = "CLOCKWORKS_EXCHANGE", default_value = "clockworks.fired")]
    exchange: String,

    /// The namespace whose events to consume (the namespace of the API key that created the
    /// timers).
    #[arg(long, env = "CLOCKWORKS_NAMESPACE")]
    namespace: String,

    /// Consume from a durable quorum queue of this name, which keeps events while the
    /// consumer is away. Without it, an exclusive queue lives as long as the consumer.
    #[arg(long)]
    queue: Option<String>,
}

/// The body of a fired event, as the clockworks AMQP contract defines it.
#[derive(Debug, Deserialize)]
struct FiredEvent {
    timer_id: String,
    fire_seq: i64,
    payload: Value,
}

/// The last `capacity` message ids seen, to tell a first delivery from a repeat.
struct RecentIds {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            capacity,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
        }
    }

    /// Whether `id` is new to the window; a new id is remembered, the oldest forgotten.
    fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;

    let (name, options, arguments) = queue_settings(args.queue.as_deref());
    let queue = channel
        .queue_declare(name.as_str().into(), options, arguments)
        .await?;
    let binding = format!("{}.#", args.namespace);
    channel
        .queue_bind(
            queue.name().clone(),
            args.exchange.as_str().into(),
            binding.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| {
            format!(
                "binding to {}; a clockworks worker declares it",
                args.exchange
            )
        })?;
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "clockworks-example-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!(
        "consuming from queue {} bound to {} with {binding}",
        queue.name(),
        args.exchange
    );

    let mut recent = RecentIds::new(RECENT_IDS);
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery.context("receiving from RabbitMQ")?;
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string());

        match &message_id {
            Some(id) if !recent.first_time(id) => eprintln!("duplicate {id} dropped"),
            _ => handle(&delivery, message_id.as_deref().unwrap_or("-"))?,
        }

        // Acknowledged only now: had the process died while handling, the broker would
        // deliver the event again.
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

/// A named queue is a durable quorum queue (replicated across a RabbitMQ cluster); without a
/// name, the broker names an exclusive queue that is deleted with the connection.
fn queue_settings(name: Option<&str>) -> (String, QueueDeclareOptions, FieldTable) {
    match name {
        Some(name) => {
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("quorum")),
            );
            let options = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            (name.to_owned(), options, arguments)
        }
        None => {
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            };
            (String::new(), options, FieldTable::default())
        }
    }
}

/// What the application does with an event; here, one line on standard output.
fn handle(delivery: &Delivery, message_id: &str) -> Result<()> {
    let routing_key = delivery.routing_key.as_str();
    let line = match serde_json::from_slice::<FiredEvent>(&delivery.data) {
        Ok(event) => format!(
            "{routing_key} {} fire_seq={} message_id={message_id} payload={}",
            event.timer_id, event.fire_seq, event.payload
        ),
        Err(_) => format!("{routing_key} (not a fired event) message_id={message_id}"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_drops_repeats_and_forgets_its_oldest_ids() {
        let mut recent = RecentIds::new(2);
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("a"));
        assert!(recent.first_time("b"));
        assert!(recent.first_time("c"));
        assert!(!recent.first_time("b"));
        assert!(recent.first_time("a"), "the oldest id was forgotten");
    }
}
