//! What happens to a message the projection cannot use: a bounded number of delayed retries,
//! then the dead-letter queue. The count travels with the message in `x-attempts`; the reason
//! of the last failure in `x-error` and `x-error-reason`.

use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Channel, Confirmation};
use shared_events::{DecodeError, EventEnvelope};

use crate::read_models::{NumberedEvent, Unnumbered};

use super::topology::{dead_letter_queue_name, retry_queue_name};
use crate::config::BrokerSettings;

pub const ATTEMPTS_HEADER: &str = "x-attempts";
pub const ERROR_HEADER: &str = "x-error";
pub const REASON_HEADER: &str = "x-error-reason";
pub const ORIGINAL_ROUTING_KEY_HEADER: &str = "x-original-routing-key";

/// Why a message could not be republished.
#[derive(Debug, thiserror::Error)]
pub enum RepublishError {
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("the broker refused the republished message (nack or unroutable)")]
    Refused,
}

/// Where an unusable message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Retry { attempt: u32 },
    DeadLettered { attempts: u32 },
}

/// Attempts made so far, as recorded on the message.
pub fn attempts_so_far(properties: &BasicProperties) -> u32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(ATTEMPTS_HEADER).cloned());
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongUInt(n)) => n,
        _ => 0,
    }
}

/// Why a message is not an event the read models can apply.
#[derive(Debug, thiserror::Error)]
pub enum UnusableMessage {
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
    #[error(transparent)]
    Unnumbered(#[from] Unnumbered),
}

impl UnusableMessage {
    /// A short, stable code for logs and the `x-error-reason` header.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Undecodable(error) => error.reason_code(),
            Self::Unnumbered(error) => error.reason_code(),
        }
    }
}

/// The event in `bytes`, if the read models can apply it as it comes.
pub fn usable_event(bytes: &[u8]) -> Result<NumberedEvent, UnusableMessage> {
    Ok(NumberedEvent::try_from(EventEnvelope::decode(bytes)?)?)
}

/// Republishes `delivery` to the retry queue, or to the dead-letter queue after its last
/// attempt, and waits for the broker's confirm. The caller acknowledges the original only
/// after this succeeded, so the message exists in exactly one place at any time.
pub async fn route_unusable(
    channel: &Channel,
    settings: &BrokerSettings,
    delivery: &Delivery,
    error: &UnusableMessage,
) -> Result<Disposition, RepublishError> {
    let attempts = attempts_so_far(&delivery.properties).saturating_add(1);
    let (queue, disposition) = if attempts < settings.max_attempts {
        (
            retry_queue_name(&settings.queue),
            Disposition::Retry { attempt: attempts },
        )
    } else {
        (
            dead_letter_queue_name(&settings.queue),
            Disposition::DeadLettered { attempts },
        )
    };

    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(
        ATTEMPTS_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempts)),
    );
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(error.to_string().into()),
    );
    headers.insert(
        REASON_HEADER.into(),
        AMQPValue::LongString(error.reason_code().into()),
    );
    if !headers.inner().contains_key(ORIGINAL_ROUTING_KEY_HEADER) {
        headers.insert(
            ORIGINAL_ROUTING_KEY_HEADER.into(),
            AMQPValue::LongString(delivery.routing_key.as_str().into()),
        );
    }
    let mut properties = copy_properties(&delivery.properties).with_headers(headers);
    if let Disposition::Retry { .. } = disposition {
        properties = properties.with_expiration(settings.retry_delay_ms.to_string().into());
    }
    publish_to_queue(channel, &queue, &delivery.data, properties).await?;
    Ok(disposition)
}

/// The original message's properties worth keeping, without any expiration.
pub fn copy_properties(original: &BasicProperties) -> BasicProperties {
    let mut properties = BasicProperties::default().with_delivery_mode(2);
    if let Some(content_type) = original.content_type() {
        properties = properties.with_content_type(content_type.clone());
    }
    if let Some(message_id) = original.message_id() {
        properties = properties.with_message_id(message_id.clone());
    }
    if let Some(kind) = original.kind() {
        properties = properties.with_type(kind.clone());
    }
    if let Some(correlation_id) = original.correlation_id() {
        properties = properties.with_correlation_id(correlation_id.clone());
    }
    properties
}

/// Publishes straight to `queue` through the default exchange and waits for the confirm.
pub async fn publish_to_queue(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), RepublishError> {
    let confirmation = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) | Confirmation::Nack(_) => Err(RepublishError::Refused),
    }
}
