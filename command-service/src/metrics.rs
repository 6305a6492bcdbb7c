//! The command side's Prometheus metrics, beside the HTTP ones every service has.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::Utc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use service_support::metrics::{seconds_histogram, DependencyStatus, HttpMetrics, Sampler};

use service_support::broker::BrokerStatus;

use crate::store::{OutboxMessage, Store};

/// What the relay counts as it publishes.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    pub confirmed: Counter,
    pub failed: Counter,
    pub connections: Counter,
    /// Events published as their commit handed them over, without a claim.
    pub handed_off: Counter,
    /// Events published after the relay claimed them.
    pub claimed: Counter,
    /// From an event's `occurredAt` (its commit) to the broker's confirm: the write side's part
    /// of the projection lag.
    pub publish_delay: Histogram,
}

impl RelayMetrics {
    /// Times `message` from its commit to now, when the broker confirmed it.
    pub fn confirmed_by_broker(&self, message: &OutboxMessage) {
        if let Some(occurred_at) = message.occurred_at {
            let delay = (Utc::now() - occurred_at).to_std().unwrap_or_default();
            self.publish_delay.observe(delay.as_secs_f64());
        }
    }
}

/// What group commit counts.
#[derive(Debug, Clone)]
pub struct GroupCommitMetrics {
    /// Orders per group: near 1, the service is idle or group commit gains nothing.
    pub sizes: Histogram,
    /// Groups PostgreSQL refused, committed again one order per transaction.
    pub splits: Counter,
}

impl Default for GroupCommitMetrics {
    fn default() -> Self {
        Self {
            sizes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            splits: Counter::default(),
        }
    }
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
    pub group_commit: GroupCommitMetrics,
    pub sampler: ScrapeSampler,
}

impl CommandMetrics {
    pub fn new(store: Store, broker: BrokerStatus) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        service_support::traces::register_metrics(&mut registry);
        let relay = RelayMetrics {
            confirmed: Counter::default(),
            failed: Counter::default(),
            connections: Counter::default(),
            handed_off: Counter::default(),
            claimed: Counter::default(),
            publish_delay: seconds_histogram(),
        };
        registry.register(
            "outbox_publish_confirms",
            "Events the broker confirmed, so marked published",
            relay.confirmed.clone(),
        );
        registry.register(
            "outbox_publish_delay_seconds",
            "From an event's occurredAt (its commit) to the broker's publish confirm",
            relay.publish_delay.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Publish attempts the broker refused or returned; the event stays in the outbox",
            relay.failed.clone(),
        );
        registry.register(
            "outbox_handed_off_events",
            "Events the relay published as their commit handed them over, without claiming them",
            relay.handed_off.clone(),
        );
        registry.register(
            "outbox_claimed_events",
            "Events the relay claimed from the outbox to publish (not handed over: appended while \
             it was away or behind, handed back after a refusal, or left by another relay)",
            relay.claimed.clone(),
        );
        registry.register(
            "outbox_relay_connections",
            "Broker connections the relay opened: more than one means it reconnected",
            relay.connections.clone(),
        );
        let group_commit = GroupCommitMetrics::default();
        registry.register(
            "order_group_commit_size",
            "Orders committed in one transaction by group commit",
            group_commit.sizes.clone(),
        );
        registry.register(
            "order_group_commit_splits",
            "Groups PostgreSQL refused (a constraint), committed again one order per transaction",
            group_commit.splits.clone(),
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
            group_commit,
            sampler,
        }
    }
}
