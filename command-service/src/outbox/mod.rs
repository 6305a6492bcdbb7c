//! The outbox relay: moves committed events from the `outbox` table to RabbitMQ.
//!
//! Delivery is at least once. A row is marked published only after the broker confirmed it,
//! so a crash between confirm and mark publishes it again; consumers are idempotent by event
//! and aggregate version. Publishing is mandatory: while no queue is bound to a routing key the
//! broker returns the message and the row stays pending, so events are never dropped by an
//! exchange with nobody listening yet.

mod relay;

pub use relay::OutboxRelay;
