use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use shared_events::{ORDER_EVENTS_BINDING, ORDER_EVENTS_EXCHANGE};

/// Exchange that receives messages the projection cannot use.
pub const DEAD_LETTER_EXCHANGE: &str = "orders.dead-letter";

/// The queue where `queue`'s unusable messages are parked for an operator.
pub fn dead_letter_queue_name(queue: &str) -> String {
    format!("{queue}.dead-letter")
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares the event exchange, the projection's quorum queue bound to every order event, and
/// its dead-letter exchange and queue. Declarations are idempotent, so every replica runs this.
pub async fn declare_topology(channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            ORDER_EVENTS_EXCHANGE.into(),
            ExchangeKind::Topic,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;

    let dead_letter_queue = dead_letter_queue_name(queue);
    channel
        .queue_declare(dead_letter_queue.as_str().into(), durable_queue(), quorum())
        .await?;
    channel
        .queue_bind(
            dead_letter_queue.as_str().into(),
            DEAD_LETTER_EXCHANGE.into(),
            dead_letter_queue.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = quorum();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead_letter_queue.as_str().into()),
    );
    channel
        .queue_declare(queue.into(), durable_queue(), arguments)
        .await?;
    channel
        .queue_bind(
            queue.into(),
            ORDER_EVENTS_EXCHANGE.into(),
            ORDER_EVENTS_BINDING.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}
