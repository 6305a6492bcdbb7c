//! The messages the command side publishes and the query side consumes.
//!
//! Both services compile against this crate, so it is the single definition of the wire format:
//! an [`EventEnvelope`] carrying metadata (event id, type, schema version, aggregate id and
//! version, correlation id) around a versioned payload. It does no I/O: ids and clocks are passed
//! in by the caller.
//!
//! The JSON encoding is pinned by the golden files in `fixtures/`, and published as JSON
//! Schemas in `schemas/`; this crate's tests check both. A change to a payload is a new schema
//! version: the old one stays decodable and is upcast to the new one (see `upcast.rs`).

mod consistency;
mod email;
mod envelope;
mod ids;
mod order;
mod upcast;

pub mod asyncapi;
pub mod fixtures;
pub mod schemas;

pub use consistency::{ConsistencyToken, InvalidConsistencyToken, CONSISTENCY_TOKEN_HEADER};
pub use email::normalise_email;
pub use envelope::{
    DecodeError, EventEnvelope, EventMetadata, RawEnvelope, FIRST_AGGREGATE_VERSION,
};
pub use ids::{EventId, OrderId};
pub use order::{
    CustomerDetails, CustomerSummary, ListPositions, Money, OnNewOrder, OrderCancelled,
    OrderDetails, OrderEvent, OrderStatus, OwnerPositions,
};
pub use upcast::{
    OnNewOrderV1, OnNewOrderV2, OnNewOrderV3, OnNewOrderV4, OrderCancelledV1, OrderCancelledV2,
    OrderCancelledV3,
};

/// Name of the durable topic exchange every event is published to.
pub const ORDER_EVENTS_EXCHANGE: &str = "orders.events";

/// Binding pattern that matches every order event's routing key.
pub const ORDER_EVENTS_BINDING: &str = "order.#";

/// The routing key events of `event_type` are published with (`order.OnNewOrder`).
pub fn routing_key(event_type: &str) -> String {
    format!("order.{event_type}")
}

/// AMQP header carrying the id of the HTTP request that caused the event (also the message's
/// `correlation_id` property and the envelope's `correlationId`).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// AMQP header (and HTTP header) carrying the W3C trace context of the request that caused the
/// event, when it came in a trace: the projection continues that trace.
pub const TRACEPARENT_HEADER: &str = "traceparent";
