//! An AMQP consumer that records every fired event a test's exchange routes to it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use jiff::Timestamp;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use tokio::sync::mpsc;

/// One delivery, as the consumer saw it.
#[derive(Debug, Clone)]
pub struct Fired {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub persistent: bool,
    pub timestamp: Option<u64>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// When this consumer received it, by the local clock.
    pub received_at: Timestamp,
}

impl Fired {
    pub fn timer_id(&self) -> &str {
        self.body["timer_id"].as_str().unwrap_or_default()
    }

    pub fn scheduled_at(&self) -> Timestamp {
        self.body["scheduled_at"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .expect("every fired event has scheduled_at")
    }
}

/// A queue of a test's own, bound to the test's exchange, drained into a channel.
pub struct Consumer {
    _connection: Connection,
    deliveries: mpsc::UnboundedReceiver<Fired>,
}

impl Consumer {
    /// Binds a fresh exclusive queue to `exchange` with `binding`; the exchange must exist
    /// (a worker declares it when it starts).
    pub async fn bind(amqp_url: &str, exchange: &str, binding: &str) -> Result<Consumer> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .context("connecting the test consumer")?;
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
                exchange.into(),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("binding to exchange {exchange}"))?;
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "clockworks-test".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let (sender, deliveries) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let fired = to_fired(&delivery);
                let _ = delivery.ack(BasicAckOptions::default()).await;
                if sender.send(fired).is_err() {
                    break;
                }
            }
        });
        Ok(Consumer {
            _connection: connection,
            deliveries,
        })
    }

    /// The next delivery, or `None` if none arrives within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Fired> {
        tokio::time::timeout(limit, self.deliveries.recv())
            .await
            .ok()
            .flatten()
    }

    /// Deliveries until `count` arrived or `limit` passed, whichever is first.
    pub async fn collect(&mut self, count: usize, limit: Duration) -> Vec<Fired> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut fired = Vec::new();
        while fired.len() < count {
            match tokio::time::timeout_at(deadline, self.deliveries.recv()).await {
                Ok(Some(delivery)) => fired.push(delivery),
                _ => break,
            }
        }
        fired
    }

    /// Every delivery that arrives within `window`.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<Fired> {
        self.collect(usize::MAX, window).await
    }
}

fn to_fired(delivery: &lapin::message::Delivery) -> Fired {
    let properties = &delivery.properties;
    let headers = properties
        .headers()
        .as_ref()
        .map(|table| {
            table
                .inner()
                .iter()
                .map(|(name, value)| (name.to_string(), header_text(value)))
                .collect()
        })
        .unwrap_or_default();
    Fired {
        routing_key: delivery.routing_key.to_string(),
        message_id: properties.message_id().as_ref().map(ToString::to_string),
        content_type: properties.content_type().as_ref().map(ToString::to_string),
        persistent: *properties.delivery_mode() == Some(2),
        timestamp: *properties.timestamp(),
        headers,
        body: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
        received_at: Timestamp::now(),
    }
}

fn header_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(text) => text.to_string(),
        AMQPValue::ShortString(text) => text.to_string(),
        AMQPValue::LongLongInt(number) => number.to_string(),
        AMQPValue::LongInt(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}

/// Deletes a test's exchange, its alternate exchange and the unrouted queue.
pub async fn delete_topology(amqp_url: &str, exchange: &str) -> Result<()> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let unrouted = format!("{exchange}.unrouted");
    channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(unrouted.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    channel
        .queue_delete(unrouted.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
