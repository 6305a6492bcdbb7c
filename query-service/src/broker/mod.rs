//! RabbitMQ through lapin: the queue topology and the consumer that feeds the projection.

mod connection;
mod consumer;
mod depths;
mod replay;
mod topology;
mod unusable;

pub use consumer::EventConsumer;
pub use depths::QueueDepthProbe;
pub use replay::{count_dead_letters, replay_dead_letters};
pub use topology::{
    dead_letter_queue_name, declare_capture_queue, declare_topology, events_document,
};
pub use unusable::{
    usable_event, ATTEMPTS_HEADER, ERROR_HEADER, ORIGINAL_ROUTING_KEY_HEADER, REASON_HEADER,
};
