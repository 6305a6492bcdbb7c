//! The query side's Prometheus metrics, beside the HTTP ones every service has.

use std::sync::Arc;

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use service_support::metrics::{seconds_histogram, DependencyStatus, HttpMetrics, Sampler};
use shared_events::EventEnvelope;

use service_support::broker::BrokerStatus;

use crate::broker::QueueDepthProbe;
use crate::projection::AppliedVersions;
use crate::store::ReadStore;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// One of [`RETRY_REASONS`].
    pub reason: &'static str,
}

/// `unusable`: the message went to the retry queue; `store_unavailable`: MongoDB failed and
/// the lane tries the same event again. Each series exists from the start, at 0, so that a
/// rate over it is 0 rather than absent until the first retry.
pub const RETRY_REASONS: [&str; 2] = ["unusable", "store_unavailable"];

/// What the consumer counts, one counter per fate of a delivery.
#[derive(Debug, Clone)]
pub struct ProjectionMetrics {
    consumed: Counter,
    applied: Counter,
    duplicates: Counter,
    retried: Family<RetryLabels, Counter>,
    dead_lettered: Counter,
    lag: Histogram,
    received_after: Histogram,
    apply_time: Histogram,
    compaction_time: Histogram,
    batch_size: Histogram,
}

impl ProjectionMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            consumed: Counter::default(),
            applied: Counter::default(),
            duplicates: Counter::default(),
            retried: Family::default(),
            dead_lettered: Counter::default(),
            lag: seconds_histogram(),
            received_after: seconds_histogram(),
            apply_time: seconds_histogram(),
            compaction_time: seconds_histogram(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
        };
        registry.register(
            "events_consumed",
            "Deliveries taken from the queue",
            metrics.consumed.clone(),
        );
        registry.register(
            "events_applied",
            "Events that changed the read models",
            metrics.applied.clone(),
        );
        registry.register(
            "events_duplicate",
            "Redelivered or duplicate events that changed nothing",
            metrics.duplicates.clone(),
        );
        for reason in RETRY_REASONS {
            metrics
                .retried
                .get_or_create(&RetryLabels { reason })
                .inc_by(0);
        }
        registry.register(
            "events_retried",
            "Attempts to be made again, by reason",
            metrics.retried.clone(),
        );
        registry.register(
            "events_dead_lettered",
            "Unusable messages parked in the dead-letter queue",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "projection_lag_seconds",
            "From an event's occurredAt to its application to the read models",
            metrics.lag.clone(),
        );
        registry.register(
            "projection_receive_delay_seconds",
            "From an event's occurredAt to its delivery to the consumer: the part of the lag \
             before the read side",
            metrics.received_after.clone(),
        );
        registry.register(
            "projection_apply_seconds",
            "Time to write one batch to the read models, from its last delivery to its \
             acknowledgement",
            metrics.apply_time.clone(),
        );
        registry.register(
            "projection_compaction_seconds",
            "Time to delete the summary versions one batch superseded, after its acknowledgement",
            metrics.compaction_time.clone(),
        );
        registry.register(
            "projection_batch_size",
            "Events applied together in one batch",
            metrics.batch_size.clone(),
        );
        metrics
    }

    pub fn batch_applied(&self, events: usize, took: std::time::Duration) {
        self.batch_size.observe(events as f64);
        self.apply_time.observe(took.as_secs_f64());
    }

    pub fn batch_compacted(&self, took: std::time::Duration) {
        self.compaction_time.observe(took.as_secs_f64());
    }

    pub fn received(&self, envelope: &EventEnvelope) {
        let delay = Utc::now() - envelope.occurred_at;
        self.received_after
            .observe(delay.to_std().unwrap_or_default().as_secs_f64());
    }

    pub fn consumed(&self) {
        self.consumed.inc();
    }

    pub fn applied(&self, envelope: &EventEnvelope) {
        self.applied.inc();
        let lag = Utc::now() - envelope.occurred_at;
        self.lag
            .observe(lag.to_std().unwrap_or_default().as_secs_f64());
    }

    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    pub fn retried(&self, reason: &'static str) {
        self.retried.get_or_create(&RetryLabels { reason }).inc();
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `projection`, `retry` or `dead_letter`.
    pub queue: &'static str,
}

/// Whether MongoDB and the broker answer, and how deep the projection's queues are, read when
/// Prometheus scrapes.
#[derive(Clone)]
pub struct ScrapeSampler {
    store: ReadStore,
    broker: BrokerStatus,
    dependencies: DependencyStatus,
    depth_probe: QueueDepthProbe,
    queue_depths: Family<QueueLabels, Gauge>,
    applied: AppliedVersions,
    waiting_reads: Gauge,
}

impl Sampler for ScrapeSampler {
    async fn sample(&self) {
        self.dependencies
            .set("rabbitmq", self.broker.is_connected());
        self.dependencies
            .set("mongodb", self.store.ping().await.is_ok());
        // A replica that cannot read them leaves them out rather than reporting a stale depth.
        self.queue_depths.clear();
        for (queue, depth) in self.depth_probe.depths().await.unwrap_or_default() {
            self.queue_depths
                .get_or_create(&QueueLabels { queue })
                .set(i64::from(depth));
        }
        self.waiting_reads
            .set(i64::try_from(self.applied.waiting()).unwrap_or(i64::MAX));
    }
}

pub struct QueryMetrics {
    pub registry: Arc<Registry>,
    pub http: HttpMetrics,
    pub projection: ProjectionMetrics,
    pub sampler: ScrapeSampler,
}

impl QueryMetrics {
    pub fn new(
        store: ReadStore,
        broker: BrokerStatus,
        depth_probe: QueueDepthProbe,
        applied: AppliedVersions,
    ) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        service_support::traces::register_metrics(&mut registry);
        let projection = ProjectionMetrics::register(&mut registry);
        let queue_depths = Family::default();
        registry.register(
            "projection_queue_messages",
            "Messages waiting in the projection's queue, its retry queue and its dead-letter queue",
            queue_depths.clone(),
        );
        let waiting_reads = Gauge::default();
        registry.register(
            "consistency_waiting_reads",
            "Reads with a consistency token waiting for the read model on this replica",
            waiting_reads.clone(),
        );
        let sampler = ScrapeSampler {
            store,
            broker,
            dependencies: DependencyStatus::register(&mut registry),
            depth_probe,
            queue_depths,
            applied,
            waiting_reads,
        };
        Self {
            registry: Arc::new(registry),
            http,
            projection,
            sampler,
        }
    }
}
