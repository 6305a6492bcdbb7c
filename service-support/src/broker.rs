//! What both services do alike with RabbitMQ: declare the order events exchange, report
//! whether they hold a working connection, and wait between reconnection attempts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};
use shared_events::ORDER_EVENTS_EXCHANGE;

/// Whether the service's broker link (the relay's publisher, the projection's consumer) is
/// currently working; read by the readiness check and the metrics.
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

/// Declares the durable topic exchange every order event is published to. Idempotent: the
/// publisher, the projection's topology and the tests each declare it before use.
pub async fn declare_order_events_exchange(channel: &Channel) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            ORDER_EVENTS_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}
