//! Queues of the projection, all declared by every replica (declarations are idempotent):
//!
//! - `<queue>`: quorum queue bound to every order event; the replicas compete for it.
//! - `<queue>.retry-quorum`: quorum queue where an unusable message waits `retry_delay_ms`
//!   (per-message TTL) before RabbitMQ dead-letters it back to `<queue>` through the default
//!   exchange, at least once: a delayed retry, not a hot loop, that survives the loss of a node.
//!   It replaces `<queue>.retry`, a classic queue living on one node, which
//!   [`retire_classic_retry_queue`] deletes once it has drained.
//! - `<queue>.dead-letter`: quorum queue where a message is parked after its last attempt,
//!   with headers saying why, for an operator to inspect and replay.

use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use service_support::broker::declare_order_events_exchange;
use shared_events::{ORDER_EVENTS_BINDING, ORDER_EVENTS_EXCHANGE};

/// The queue where `queue`'s unusable messages wait before their next attempt.
pub fn retry_queue_name(queue: &str) -> String {
    format!("{queue}.retry-quorum")
}

/// The classic queue earlier releases declared for the same purpose.
fn classic_retry_queue_name(queue: &str) -> String {
    format!("{queue}.retry")
}

/// The queue where `queue`'s unusable messages are parked for an operator.
pub fn dead_letter_queue_name(queue: &str) -> String {
    format!("{queue}.dead-letter")
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn arguments(entries: &[(&str, &str)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert((*key).into(), AMQPValue::LongString((*value).into()));
    }
    table
}

async fn bind_to_every_event(channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            queue.into(),
            ORDER_EVENTS_EXCHANGE.into(),
            ORDER_EVENTS_BINDING.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

pub async fn declare_topology(channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
    declare_order_events_exchange(channel).await?;
    let quorum = [("x-queue-type", "quorum")];
    channel
        .queue_declare(queue.into(), durable(), arguments(&quorum))
        .await?;
    bind_to_every_event(channel, queue).await?;
    channel
        .queue_declare(
            retry_queue_name(queue).as_str().into(),
            durable(),
            arguments(&[
                ("x-queue-type", "quorum"),
                ("x-dead-letter-exchange", ""),
                ("x-dead-letter-routing-key", queue),
                // Expired messages stay until `<queue>` confirms them, which RabbitMQ allows
                // only when a full queue refuses publishes rather than dropping its head.
                ("x-dead-letter-strategy", "at-least-once"),
                ("x-overflow", "reject-publish"),
            ]),
        )
        .await?;
    channel
        .queue_declare(
            dead_letter_queue_name(queue).as_str().into(),
            durable(),
            arguments(&quorum),
        )
        .await?;
    Ok(())
}

/// Deletes the classic retry queue of earlier releases if it is empty; its messages keep
/// expiring back into `queue` meanwhile, so a later start deletes it. On a channel of its own,
/// which the broker closes when the queue still holds messages. Whether it was deleted.
pub async fn retire_classic_retry_queue(connection: &Connection, queue: &str) -> bool {
    let legacy = classic_retry_queue_name(queue);
    let deleted = match connection.create_channel().await {
        Ok(channel) => {
            let options = QueueDeleteOptions {
                if_empty: true,
                ..QueueDeleteOptions::default()
            };
            let deleted = channel.queue_delete(legacy.as_str().into(), options).await;
            let _ = channel.close(200, "".into()).await;
            deleted.is_ok()
        }
        Err(_) => false,
    };
    if !deleted {
        log::info!("{legacy} still holds messages; they return to {queue} as they expire");
    }
    deleted
}

/// A queue that receives a copy of every event from now on, for as long as `channel`'s
/// connection lives (exclusive: it disappears with the connection, so a crashed rebuild leaves
/// nothing collecting messages).
pub async fn declare_capture_queue(channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
    declare_order_events_exchange(channel).await?;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    bind_to_every_event(channel, queue).await
}
