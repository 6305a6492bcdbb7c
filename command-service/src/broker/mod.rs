//! RabbitMQ through lapin: publishing events with publisher confirms.

mod publisher;

pub use publisher::{EventPublisher, PendingConfirms, PublishError};
