use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use service_support::broker::{declare_order_events_exchange, BrokerAddresses};
use service_support::traces::{self, KeyValue, SpanKind, TRACEPARENT_HEADER};
use shared_events::{ORDER_EVENTS_EXCHANGE, REQUEST_ID_HEADER};
use tokio::time::{timeout_at, Instant};

use crate::store::OutboxMessage;

/// Why one event was not accepted by the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker connection failed: {0}")]
    Connection(#[from] lapin::Error),
    #[error("no queue is bound for routing key {0:?}; the event stays in the outbox")]
    Unroutable(String),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("the broker did not confirm the message within {} ms", .0.as_millis())]
    Unconfirmed(Duration),
}

/// A confirm-mode channel to the order events exchange.
pub struct EventPublisher {
    _connection: Connection,
    channel: Channel,
}

impl EventPublisher {
    /// Connects to one of the broker's addresses, enables publisher confirms and declares the
    /// durable topic exchange.
    pub async fn connect(addresses: &BrokerAddresses) -> Result<Self, lapin::Error> {
        let connection = addresses.connect("command-service").await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_order_events_exchange(&channel).await?;
        Ok(Self {
            _connection: connection,
            channel,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.channel.status().connected()
    }

    /// Publishes every message as persistent and mandatory, in order, without waiting for
    /// the broker: the confirms are awaited through the answer, for at most `confirm_timeout`
    /// from now, while the next messages go out. A message not even sent by then counts as
    /// unconfirmed: lapin can leave a frame queued for good on a connection that died as it
    /// was queued.
    pub async fn publish_all(
        &self,
        messages: Vec<OutboxMessage>,
        confirm_timeout: Duration,
    ) -> PendingConfirms {
        let deadline = Instant::now() + confirm_timeout;
        let published_at = SystemTime::now();
        let mut confirms = Vec::with_capacity(messages.len());
        for message in &messages {
            let sent = timeout_at(deadline, self.publish(message))
                .await
                .unwrap_or(Err(PublishError::Unconfirmed(confirm_timeout)));
            confirms.push(sent);
        }
        PendingConfirms {
            messages,
            confirms,
            deadline,
            confirm_timeout,
            published_at,
        }
    }

    async fn publish(
        &self,
        message: &OutboxMessage,
    ) -> Result<lapin::PublisherConfirm, PublishError> {
        let correlation_id = message
            .request_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.event_id.to_string().into())
            .with_type(message.event_type.as_str().into())
            .with_correlation_id(correlation_id.as_str().into())
            .with_headers(headers(message, correlation_id));
        Ok(self
            .channel
            .basic_publish(
                ORDER_EVENTS_EXCHANGE.into(),
                message.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                message.envelope.as_bytes(),
                properties,
            )
            .await?)
    }
}

/// The request id, and the trace context when the event has one.
fn headers(message: &OutboxMessage, correlation_id: String) -> FieldTable {
    let mut headers = BTreeMap::from([(
        REQUEST_ID_HEADER.into(),
        AMQPValue::LongString(correlation_id.into()),
    )]);
    if let Some(trace_parent) = &message.trace_parent {
        headers.insert(
            TRACEPARENT_HEADER.into(),
            AMQPValue::LongString(trace_parent.as_str().into()),
        );
    }
    FieldTable::from(headers)
}

/// Messages published and not yet confirmed.
pub struct PendingConfirms {
    messages: Vec<OutboxMessage>,
    confirms: Vec<Result<lapin::PublisherConfirm, PublishError>>,
    deadline: Instant,
    confirm_timeout: Duration,
    published_at: SystemTime,
}

impl PendingConfirms {
    /// Awaits every confirm, until the deadline; each message with what became of it.
    pub async fn settled(self) -> Vec<(OutboxMessage, Result<(), PublishError>)> {
        let Self {
            messages,
            confirms,
            deadline,
            confirm_timeout,
            published_at,
        } = self;
        let outcomes = join_all(confirms.into_iter().zip(&messages).map(
            |(sent, message)| async move {
                let outcome = async {
                    let confirmation = timeout_at(deadline, sent?)
                        .await
                        .map_err(|_| PublishError::Unconfirmed(confirm_timeout))?;
                    match confirmation? {
                        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
                        Confirmation::Ack(Some(_returned)) => {
                            Err(PublishError::Unroutable(message.routing_key.clone()))
                        }
                        Confirmation::Nack(_) => Err(PublishError::Nacked),
                    }
                }
                .await;
                trace_relay(message, published_at, &outcome);
                outcome
            },
        ))
        .await;
        messages.into_iter().zip(outcomes).collect()
    }
}

/// Records the event's time in the outbox (its commit to its publish) and its publish (to
/// the broker's confirm) in the trace of the request that caused it.
fn trace_relay(
    message: &OutboxMessage,
    published_at: SystemTime,
    outcome: &Result<(), PublishError>,
) {
    if !traces::recording() {
        return;
    }
    let parent = traces::extract(message.trace_parent.as_deref());
    let attributes = || {
        vec![
            KeyValue::new("order.id", message.aggregate_id.to_string()),
            KeyValue::new("messaging.message.id", message.event_id.to_string()),
        ]
    };
    if let Some(committed) = message.occurred_at {
        traces::record(
            "outbox wait",
            SpanKind::Internal,
            &parent,
            (committed.into(), published_at),
            attributes,
            None,
        );
    }
    traces::record(
        "publish orders.events",
        SpanKind::Producer,
        &parent,
        (published_at, SystemTime::now()),
        attributes,
        outcome.as_ref().err().map(ToString::to_string),
    );
}
