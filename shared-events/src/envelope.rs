use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{
    EventId, OnNewOrder, OnNewOrderV1, OnNewOrderV2, OnNewOrderV3, OnNewOrderV4, OrderCancelled,
    OrderCancelledV1, OrderCancelledV2, OrderCancelledV3, OrderEvent, OrderId,
};

/// An order's version once its first event (its placement) is applied.
pub const FIRST_AGGREGATE_VERSION: u64 = 1;

/// Metadata and payload of one event, as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope<P = OrderEvent> {
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub aggregate_id: OrderId,
    /// The order's version once this event is applied: 1 when it is placed, then one more
    /// with each event.
    pub aggregate_version: u64,
    pub correlation_id: String,
    pub payload: P,
}

/// An envelope whose payload has not been interpreted yet.
pub type RawEnvelope = EventEnvelope<serde_json::Value>;

/// What the caller supplies when it seals an event: identity, time and correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub event_id: EventId,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
}

/// Why bytes on the wire are not an event this version of the code can apply.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not a valid event envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("unsupported schema version {version} of {event_type}")]
    UnsupportedSchemaVersion { event_type: String, version: u32 },
    #[error("invalid {event_type} payload: {source}")]
    InvalidPayload {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// A short, stable code for logs and dead-letter headers.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed-envelope",
            Self::UnknownEventType(_) => "unknown-event-type",
            Self::UnsupportedSchemaVersion { .. } => "unsupported-schema-version",
            Self::InvalidPayload { .. } => "invalid-payload",
        }
    }
}

impl EventEnvelope<OrderEvent> {
    /// Wraps `event`, which brings the order to `aggregate_version`.
    pub fn seal(event: OrderEvent, aggregate_version: u64, metadata: EventMetadata) -> Self {
        Self {
            event_id: metadata.event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: metadata.occurred_at,
            aggregate_id: event.order_id(),
            aggregate_version,
            correlation_id: metadata.correlation_id,
            payload: event,
        }
    }
}

impl<P> EventEnvelope<P> {
    /// The AMQP routing key: `order.<EventType>`.
    pub fn routing_key(&self) -> String {
        crate::routing_key(&self.event_type)
    }
}

impl RawEnvelope {
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::Malformed)
    }

    /// Interprets the payload according to the event type and schema version, upcasting an
    /// older version to the current one.
    pub fn into_typed(self) -> Result<EventEnvelope<OrderEvent>, DecodeError> {
        let payload = match (self.event_type.as_str(), self.schema_version) {
            (OnNewOrder::EVENT_TYPE, OnNewOrderV1::SCHEMA_VERSION) => {
                let v2 = OnNewOrderV2::from(self.payload_as::<OnNewOrderV1>()?);
                OrderEvent::OnNewOrder(OnNewOrderV4::from(OnNewOrderV3::from(v2)).into())
            }
            (OnNewOrder::EVENT_TYPE, OnNewOrderV2::SCHEMA_VERSION) => {
                let v3 = OnNewOrderV3::from(self.payload_as::<OnNewOrderV2>()?);
                OrderEvent::OnNewOrder(OnNewOrderV4::from(v3).into())
            }
            (OnNewOrder::EVENT_TYPE, OnNewOrderV3::SCHEMA_VERSION) => OrderEvent::OnNewOrder(
                OnNewOrderV4::from(self.payload_as::<OnNewOrderV3>()?).into(),
            ),
            (OnNewOrder::EVENT_TYPE, OnNewOrderV4::SCHEMA_VERSION) => {
                OrderEvent::OnNewOrder(self.payload_as::<OnNewOrderV4>()?.into())
            }
            (OnNewOrder::EVENT_TYPE, OnNewOrder::SCHEMA_VERSION) => {
                OrderEvent::OnNewOrder(self.payload_as()?)
            }
            (OrderCancelled::EVENT_TYPE, OrderCancelledV1::SCHEMA_VERSION) => {
                let v2 = OrderCancelledV2::from(self.payload_as::<OrderCancelledV1>()?);
                OrderEvent::OrderCancelled(OrderCancelledV3::from(v2).into())
            }
            (OrderCancelled::EVENT_TYPE, OrderCancelledV2::SCHEMA_VERSION) => {
                OrderEvent::OrderCancelled(
                    OrderCancelledV3::from(self.payload_as::<OrderCancelledV2>()?).into(),
                )
            }
            (OrderCancelled::EVENT_TYPE, OrderCancelledV3::SCHEMA_VERSION) => {
                OrderEvent::OrderCancelled(self.payload_as::<OrderCancelledV3>()?.into())
            }
            (OrderCancelled::EVENT_TYPE, OrderCancelled::SCHEMA_VERSION) => {
                OrderEvent::OrderCancelled(self.payload_as()?)
            }
            (OnNewOrder::EVENT_TYPE | OrderCancelled::EVENT_TYPE, version) => {
                return Err(DecodeError::UnsupportedSchemaVersion {
                    event_type: self.event_type,
                    version,
                })
            }
            _ => return Err(DecodeError::UnknownEventType(self.event_type)),
        };
        Ok(EventEnvelope {
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: payload.schema_version(),
            occurred_at: self.occurred_at,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version,
            correlation_id: self.correlation_id,
            payload,
        })
    }

    fn payload_as<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        T::deserialize(&self.payload).map_err(|source| DecodeError::InvalidPayload {
            event_type: self.event_type.clone(),
            source,
        })
    }
}

impl EventEnvelope<OrderEvent> {
    /// Decodes wire bytes into a typed envelope.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        RawEnvelope::from_slice(bytes)?.into_typed()
    }
}
