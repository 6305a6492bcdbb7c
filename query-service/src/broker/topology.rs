//! Queues of the projection, all declared by every replica (declarations are idempotent):
//!
//! - `<queue>`: quorum queue bound to every order event; the replicas compete for it.
//! - `<queue>.retry-quorum`: quorum queue where an unusable message waits `retry_delay_ms`
//!   (per-message TTL) before RabbitMQ dead-letters it back to `<queue>` through the default
//!   exchange, at least once: a delayed retry, not a hot loop, that survives the loss of a node.
//! - `<queue>.dead-letter`: quorum queue where a message is parked after its last attempt,
//!   with headers saying why, for an operator to inspect and replay.

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use service_support::broker::declare_order_events_exchange;
use shared_events::asyncapi::QueueChannel;
use shared_events::{ORDER_EVENTS_BINDING, ORDER_EVENTS_EXCHANGE};

/// The events' AsyncAPI document with this topology's queues, `queue` being the projection's.
pub fn events_document(queue: &str) -> serde_json::Value {
    let retry = retry_queue_name(queue);
    let dead_letter = dead_letter_queue_name(queue);
    shared_events::asyncapi::document(&[
        QueueChannel {
            id: "projection",
            name: queue,
            description: "The query side's quorum queue, bound to every order event \
                          (`order.#`); its replicas compete for the messages.",
        },
        QueueChannel {
            id: "projectionRetry",
            name: &retry,
            description: "Where an unusable message waits (per-message TTL) before it is \
                          dead-lettered back to the projection's queue, its headers counting \
                          the attempts.",
        },
        QueueChannel {
            id: "projectionDeadLetter",
            name: &dead_letter,
            description: "Where a message is parked after its last attempt, with \
                          `x-error-reason` and `x-error-message`, for an operator to inspect \
                          and replay.",
        },
    ])
}

/// The queue where `queue`'s unusable messages wait before their next attempt.
pub fn retry_queue_name(queue: &str) -> String {
    format!("{queue}.retry-quorum")
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
