//! The outbox relay: moves committed events from the `outbox` table to RabbitMQ.
//!
//! Delivery is at least once. A row is marked published only after the broker confirmed it,
//! so a crash between confirm and mark publishes it again; consumers are idempotent by event
//! and aggregate version. Publishing is mandatory: while no queue is bound to a routing key the
//! broker returns the message and the row stays pending, so events are never dropped by an
//! exchange with nobody listening yet. A commit hands its events to the relay of its process
//! (`handoff`), claimed for it as they are appended, so they are published without a claim of
//! their own; the relay claims what was not handed over.

mod handoff;
mod relay;

pub use handoff::{HandedOff, Handoff, HandoffReceiver, Reservation, WAITING_COMMITS};
pub use relay::OutboxRelay;
