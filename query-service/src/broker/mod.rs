//! RabbitMQ through lapin: the queue topology and the consumer that feeds the projection.

mod consumer;
mod replay;
mod topology;
mod unusable;

pub use consumer::EventConsumer;
pub use replay::replay_dead_letters;
pub use topology::{dead_letter_queue_name, declare_capture_queue, declare_topology};
pub use unusable::{ATTEMPTS_HEADER, ERROR_HEADER, ORIGINAL_ROUTING_KEY_HEADER, REASON_HEADER};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Whether the consumer is currently attached to its queue; read by the readiness check.
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn set_connected(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Delays between retries: exponential from 100 ms, capped at 5 s, with jitter.
pub fn retry_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}
