//! RabbitMQ through lapin: publishing events with publisher confirms.

mod publisher;

pub use publisher::{EventPublisher, PublishError};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Whether the relay currently holds a working broker connection; read by the readiness check.
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

/// Delays between reconnection attempts: exponential from 100 ms, capped at 5 s, with jitter.
pub fn reconnect_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}
