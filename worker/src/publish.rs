//! The broker side of the worker: one connection with one confirming channel, the topology
//! declared on it, and publishing a batch of fires with publisher confirms.
//!
//! The connection does not recover by itself: after any error the claim loop drops this
//! publisher and connects a new one, which declares the topology again.

use std::time::Duration;

use clockworks::config::{AmqpArgs, redact_url};
use futures::StreamExt;
use futures::future::join_all;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties, Event, ExchangeKind};
use thiserror::Error;

use crate::admin::Health;
use crate::fire::Fire;

/// Longest time to open a connection and declare the topology before the attempt counts as
/// failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the broker to acknowledge closing a connection being replaced.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

#[derive(Debug, Error)]
pub enum PublishError {
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("the broker did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("the broker refused (nacked) a message")]
    Nacked,
    #[error("the broker returned a message as unroutable: {code} {text}")]
    Returned { code: u16, text: String },
    #[error("the channel is not in confirm mode")]
    NotConfirmed,
}

/// A connection to RabbitMQ with the topology declared and a channel in confirm mode.
pub struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: ShortString,
}

impl Publisher {
    /// Connects, declares the topology and puts a channel in confirm mode. Connection errors
    /// that happen later mark the broker unreachable in `health` at once.
    pub async fn connect(amqp: &AmqpArgs, health: &Health) -> Result<Publisher, PublishError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Publisher::open(amqp, health))
            .await
            .map_err(|_| PublishError::TimedOut(CONNECT_TIMEOUT))?
    }

    async fn open(amqp: &AmqpArgs, health: &Health) -> Result<Publisher, PublishError> {
        let properties =
            ConnectionProperties::default().with_connection_name("clockworks-worker".into());
        let connection = Connection::connect(&amqp.amqp_url, properties).await?;
        watch_connection(&connection, health.clone());

        let channel = connection.create_channel().await?;
        declare_topology(&channel, amqp).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;

        tracing::info!(
            broker.url = %redact_url(&amqp.amqp_url),
            broker.exchange = %amqp.exchange,
            "connected to the broker and declared the topology"
        );
        Ok(Publisher {
            connection,
            channel,
            exchange: amqp.exchange.as_str().into(),
        })
    }

    /// Whether the connection and the channel are still open.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes every fire, persistent and mandatory, then waits for all their confirms.
    /// Succeeds only when the broker acknowledged every one and returned none, within
    /// `limit` for the whole batch.
    pub async fn publish(&self, fires: &[Fire], limit: Duration) -> Result<(), PublishError> {
        tokio::time::timeout(limit, self.publish_and_confirm(fires))
            .await
            .map_err(|_| PublishError::TimedOut(limit))?
    }

    async fn publish_and_confirm(&self, fires: &[Fire]) -> Result<(), PublishError> {
        let mut confirms = Vec::with_capacity(fires.len());
        for fire in fires {
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.clone(),
                    fire.routing_key.clone(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &fire.body,
                    fire.properties.clone(),
                )
                .await?;
            confirms.push(confirm);
        }

        for confirmation in join_all(confirms).await {
            match confirmation? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    return Err(PublishError::Returned {
                        code: returned.reply_code,
                        text: returned.reply_text.to_string(),
                    });
                }
                Confirmation::Nack(None) => return Err(PublishError::Nacked),
                Confirmation::NotRequested => return Err(PublishError::NotConfirmed),
            }
        }
        Ok(())
    }

    /// Closes the connection, waiting briefly for the broker; used when the worker stops or
    /// replaces a connection that failed.
    pub async fn close(self) {
        let close = self
            .connection
            .close(REPLY_SUCCESS, "clockworks worker closing".into());
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
    }
}

/// The alternate exchange and its queue first, so that the main exchange can name it: fired
/// events that no queue is bound for land in `<exchange>.unrouted` instead of vanishing.
async fn declare_topology(channel: &Channel, amqp: &AmqpArgs) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let unrouted_exchange = amqp.unrouted_exchange();
    let unrouted_queue = amqp.unrouted_queue();
    channel
        .exchange_declare(
            unrouted_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            unrouted_queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            unrouted_queue.as_str().into(),
            unrouted_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = FieldTable::default();
    arguments.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(LongString::from(unrouted_exchange.as_str())),
    );
    channel
        .exchange_declare(
            amqp.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            arguments,
        )
        .await
}

/// Marks the broker unreachable as soon as the connection reports an error, so readiness
/// drops without waiting for the next publish to fail.
fn watch_connection(connection: &Connection, health: Health) {
    let mut events = connection.events_listener();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let Event::Error(err) = event {
                tracing::warn!(cause = %err, "the broker connection failed");
                health.set_broker(false);
                break;
            }
        }
    });
}
