use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use service_support::broker::declare_order_events_exchange;
use shared_events::{ORDER_EVENTS_BINDING, ORDER_EVENTS_EXCHANGE};

async fn channel(amqp_url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to RabbitMQ at {amqp_url}: {error}"));
    let channel = connection.create_channel().await.expect("open channel");
    declare_order_events_exchange(&channel)
        .await
        .expect("declare the events exchange");
    (connection, channel)
}

/// A private queue bound to every order event: lets a test see what was published.
pub struct EventTap {
    _connection: Connection,
    consumer: Consumer,
}

impl EventTap {
    pub async fn attach(amqp_url: &str) -> Self {
        let (connection, channel) = channel(amqp_url).await;
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
            .await
            .expect("declare tap queue");
        channel
            .queue_bind(
                queue.name().clone(),
                ORDER_EVENTS_EXCHANGE.into(),
                ORDER_EVENTS_BINDING.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind tap queue");
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "event-tap".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume tap queue");
        Self {
            _connection: connection,
            consumer,
        }
    }

    /// The next message's body and properties, or `None` if none arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<(Vec<u8>, BasicProperties)> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .expect("tap delivery");
        delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack tap delivery");
        Some((delivery.data, delivery.properties))
    }
}

/// Publishes raw messages to the order events exchange, as the command side would.
pub struct TestPublisher {
    _connection: Connection,
    channel: Channel,
}

impl TestPublisher {
    pub async fn connect(amqp_url: &str) -> Self {
        let (connection, channel) = channel(amqp_url).await;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("enable confirms");
        Self {
            _connection: connection,
            channel,
        }
    }

    /// Publishes `body` persistently with `routing_key` and waits for the broker's confirm.
    pub async fn publish(&self, routing_key: &str, body: &[u8]) {
        self.publish_via(ORDER_EVENTS_EXCHANGE, routing_key, body)
            .await;
    }

    /// Publishes `body` as the command side publishes an `OnNewOrder` event, whatever it holds.
    pub async fn publish_as_new_order(&self, body: &[u8]) {
        let routing_key = shared_events::routing_key(shared_events::OnNewOrder::EVENT_TYPE);
        self.publish(&routing_key, body).await;
    }

    /// Puts `body` straight into `queue` (through the default exchange).
    pub async fn publish_to_queue(&self, queue: &str, body: &[u8]) {
        self.publish_via("", queue, body).await;
    }

    async fn publish_via(&self, exchange: &str, routing_key: &str, body: &[u8]) {
        let confirmation = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into()),
            )
            .await
            .expect("publish")
            .await
            .expect("publisher confirm");
        assert!(confirmation.is_ack(), "the broker did not ack the message");
    }
}

/// Takes one message from `queue` if there is one (`basic.get`, acknowledged).
pub async fn take_message(amqp_url: &str, queue: &str) -> Option<(Vec<u8>, BasicProperties)> {
    let (_connection, channel) = channel(amqp_url).await;
    let message = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get")?;
    Some((message.delivery.data, message.delivery.properties))
}
