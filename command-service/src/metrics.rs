//! The command side's Prometheus metrics, beside the HTTP ones every service has.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use service_support::metrics::{DependencyStatus, HttpMetrics, Sampler};

use crate::store::Store;
use service_support::broker::BrokerStatus;

/// What the relay counts as it publishes.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics {
    pub confirmed: Counter,
    pub failed: Counter,
}

/// Gauges read from PostgreSQL and the relay's connection when Prometheus scrapes.
#[derive(Clone)]
pub struct ScrapeSampler {
    store: Store,
    broker: BrokerStatus,
    dependencies: DependencyStatus,
    pending: Gauge,
    oldest_pending_age: Gauge<f64, AtomicU64>,
}

impl Sampler for ScrapeSampler {
    async fn sample(&self) {
        self.dependencies
            .set("rabbitmq", self.broker.is_connected());
        match self.store.outbox_backlog().await {
            Ok(backlog) => {
                self.dependencies.set("postgres", true);
                self.pending.set(backlog.pending);
                self.oldest_pending_age.set(backlog.oldest_age_seconds);
            }
            Err(error) => {
                log::warn!("cannot read the outbox backlog for metrics: {error}");
                self.dependencies.set("postgres", false);
            }
        }
    }
}

pub struct CommandMetrics {
    pub registry: Arc<Registry>,
    pub http: HttpMetrics,
    pub relay: RelayMetrics,
    pub sampler: ScrapeSampler,
}

impl CommandMetrics {
    pub fn new(store: Store, broker: BrokerStatus) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        let relay = RelayMetrics::default();
        registry.register(
            "outbox_publish_confirms",
            "Events the broker confirmed, so marked published",
            relay.confirmed.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Publish attempts the broker refused or returned; the event stays in the outbox",
            relay.failed.clone(),
        );
        let sampler = ScrapeSampler {
            store,
            broker,
            dependencies: DependencyStatus::register(&mut registry),
            pending: Gauge::default(),
            oldest_pending_age: Gauge::default(),
        };
        registry.register(
            "outbox_pending_events",
            "Events committed but not yet confirmed by the broker",
            sampler.pending.clone(),
        );
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest event not yet confirmed by the broker (0 when none)",
            sampler.oldest_pending_age.clone(),
        );
        Self {
            registry: Arc::new(registry),
            http,
            relay,
            sampler,
        }
    }
}
