use std::time::SystemTime;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use service_support::traces::{self, Context, FutureExt, KeyValue, SpanKind, TRACEPARENT_HEADER};
use service_support::RequestId;
use shared_events::EventEnvelope;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::unusable::{route_unusable, usable_event, Disposition, RepublishError, UnusableMessage};
use service_support::broker::{reconnect_backoff, BrokerStatus};

use super::connection::while_connected;
use super::{declare_topology, QueueDepthProbe};
use crate::config::BrokerSettings;
use crate::metrics::ProjectionMetrics;
use crate::projection::{Outcome, Projector};
use crate::read_models::NumberedEvent;

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("cannot move an unusable message: {0}")]
    Republish(#[from] RepublishError),
}

/// Feeds the projection from the queue.
///
/// Deliveries are taken in batches: the first, then up to `batch_size` of those that have
/// arrived meanwhile (by default a batch does not wait for more: a short queue gives small
/// batches and a low lag, a long one large batches; `batch_wait_ms` trades lag for larger
/// batches). A batch is applied as a whole (one summary write per customer, one insert for
/// all new orders; see [`Projector::apply_batch`]), acknowledged with one `multiple`
/// acknowledgement once it is in MongoDB, and then compacted ([`Projector::compact`]). While
/// MongoDB fails, the same batch is retried with backoff, so nothing is dropped.
/// Unacknowledged deliveries (at most `prefetch`) go back to the queue if the connection is
/// lost, and are then applied idempotently. A message that is not a usable event is set aside
/// on its own as it arrives and never holds up the others.
pub struct EventConsumer {
    settings: BrokerSettings,
    projector: Projector,
    status: BrokerStatus,
    metrics: ProjectionMetrics,
    depths: QueueDepthProbe,
}

impl EventConsumer {
    pub fn new(
        settings: BrokerSettings,
        projector: Projector,
        status: BrokerStatus,
        metrics: ProjectionMetrics,
        depths: QueueDepthProbe,
    ) -> Self {
        Self {
            settings,
            projector,
            status,
            metrics,
            depths,
        }
    }

    /// Consumes until `shutdown` is cancelled, reconnecting with backoff when the broker fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = reconnect_backoff();
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
                // Whatever failed while closing at shutdown is no reason to reconnect.
                Err(_) if shutdown.is_cancelled() => break,
                Err(error) => {
                    self.status.set_connected(false);
                    let delay = backoff.next().unwrap_or_default();
                    log::warn!("event consumer disconnected ({error}); reconnecting in {delay:?}");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.status.set_connected(false);
        log::info!("event consumer stopped");
    }

    /// One connection's session: consumes until `shutdown` (`Ok`) or until the connection is
    /// lost, whatever the session is waiting for at that moment.
    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), ConsumeError> {
        let connection = self.settings.url.connect("query-service").await?;
        while_connected(&connection, self.consume_on(&connection, shutdown)).await
    }

    /// Declares the topology, attaches to the queue and applies batches until `shutdown`, then
    /// closes `connection`.
    async fn consume_on(
        &self,
        connection: &lapin::Connection,
        shutdown: &CancellationToken,
    ) -> Result<(), ConsumeError> {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, &self.settings.queue).await?;
        let republisher = connection.create_channel().await?;
        republisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await?;
        let mut deliveries = channel
            .basic_consume(
                self.settings.queue.as_str().into(),
                "query-service".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.depths.attach(connection.create_channel().await?).await;
        self.status.set_connected(true);
        log::info!("event consumer attached to queue {}", self.settings.queue);

        let batch_size = usize::from(self.settings.batch_size);
        let mut batch: Vec<Received> = Vec::with_capacity(batch_size);
        loop {
            // Wait for a first delivery, then take those that have arrived (and, with a
            // batch wait, those that arrive within it) until the batch is full.
            let mut closes = None;
            while batch.len() < batch_size {
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    next = deliveries.next() => next,
                    () = sleep_until_some(closes) => break,
                };
                let delivery = next.ok_or(ConsumeError::Cancelled)??;
                self.metrics.consumed();
                match usable_event(&delivery.data) {
                    Ok(event) => {
                        self.metrics.received(&event.envelope);
                        closes.get_or_insert_with(|| Instant::now() + self.settings.batch_wait());
                        batch.push(Received {
                            trace: traces::extract(traceparent(&delivery)),
                            delivery,
                            event,
                            at: SystemTime::now(),
                        });
                    }
                    Err(error) => self.set_aside(&republisher, delivery, &error).await?,
                }
            }
            if shutdown.is_cancelled() || !self.apply(&batch, shutdown).await? {
                // Whatever is still unacknowledged goes back to the queue. Closed here, while
                // the session's channels are open: closing the connection after they were
                // dropped fails on a channel still closing.
                connection.close(200, "shutting down".into()).await?;
                return Ok(());
            }
            batch.clear();
        }
    }

    /// Applies `batch`, retrying while MongoDB fails, and acknowledges it. `false` when
    /// shutdown came first: the batch is left unacknowledged for the broker to redeliver.
    async fn apply(
        &self,
        batch: &[Received],
        shutdown: &CancellationToken,
    ) -> Result<bool, lapin::Error> {
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        let events: Vec<NumberedEvent> = batch
            .iter()
            .map(|received| received.event.clone())
            .collect();
        let started = Instant::now();
        let started_at = SystemTime::now();
        let mut backoff = reconnect_backoff();
        let applied = loop {
            match self.projector.apply_batch(&events).await {
                Ok(applied) => break applied,
                Err(error) => {
                    self.metrics.retried("store_unavailable");
                    let delay = backoff.next().unwrap_or_default();
                    log::warn!(
                        "cannot apply a batch of {} events ({error}); retrying in {delay:?}",
                        events.len()
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        // Every delivery of the batch, and every unusable one before it, which was acknowledged
        // already on its own.
        last.delivery
            .ack(BasicAckOptions { multiple: true })
            .await?;
        self.metrics.batch_applied(events.len(), started.elapsed());
        trace_batch(batch, (started_at, SystemTime::now()));
        for (received, outcome) in batch.iter().zip(applied.outcomes) {
            let envelope = &received.event.envelope;
            RequestId::scope_if(
                RequestId::parse(&envelope.correlation_id),
                async {
                    self.record(envelope, outcome);
                }
                .with_context(received.trace.clone()),
            )
            .await;
        }
        // After the acknowledgement, so that neither this batch's lag nor the read-your-writes
        // waits include it; before the next batch, so that a projection that is behind still
        // takes batches as large as they were.
        let compacting = Instant::now();
        self.projector.compact(&applied.compactions).await;
        self.metrics.batch_compacted(compacting.elapsed());
        Ok(true)
    }

    fn record(&self, envelope: &EventEnvelope, outcome: Outcome) {
        match outcome {
            Outcome::Applied => {
                self.metrics.applied(envelope);
                log::info!(
                    "applied {} v{} {} for order {}",
                    envelope.event_type,
                    envelope.schema_version,
                    envelope.event_id,
                    envelope.aggregate_id
                );
            }
            Outcome::AlreadyApplied => {
                self.metrics.duplicate();
                log::info!(
                    "skipped {} {}: already applied",
                    envelope.event_type,
                    envelope.event_id
                );
            }
        }
    }

    async fn set_aside(
        &self,
        republisher: &lapin::Channel,
        delivery: Delivery,
        error: &UnusableMessage,
    ) -> Result<(), ConsumeError> {
        let request_id = delivery
            .properties
            .correlation_id()
            .as_ref()
            .and_then(|id| RequestId::parse(id.as_str()));
        let disposition = route_unusable(republisher, &self.settings, &delivery, error).await?;
        RequestId::scope_if(request_id, async {
            match disposition {
                Disposition::Retry { attempt } => {
                    self.metrics.retried("unusable");
                    log::warn!(
                        "unusable message ({error}); attempt {attempt} of {}, retrying in {} ms",
                        self.settings.max_attempts,
                        self.settings.retry_delay_ms
                    );
                }
                Disposition::DeadLettered { attempts } => {
                    self.metrics.dead_lettered();
                    log::error!(
                        "unusable message ({error}); dead-lettered after {attempts} attempts"
                    );
                }
            }
        })
        .await;
        delivery.ack(BasicAckOptions::default()).await?;
        Ok(())
    }
}

/// An event delivered and waiting in the batch being filled.
struct Received {
    delivery: Delivery,
    event: NumberedEvent,
    at: SystemTime,
    /// The trace its message continues (empty if it carries none).
    trace: Context,
}

/// The message's `traceparent` header, if it has one.
fn traceparent(delivery: &Delivery) -> Option<&str> {
    match delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(TRACEPARENT_HEADER)?
    {
        AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok(),
        _ => None,
    }
}

/// Records each event's delivery (from its arrival to its batch's acknowledgement) in the
/// trace of the request that caused it, and the batch's write as a span of its own linked to
/// each of those traces.
fn trace_batch(batch: &[Received], (started, applied): (SystemTime, SystemTime)) {
    if !traces::recording() {
        return;
    }
    let size = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    for received in batch {
        let envelope = &received.event.envelope;
        traces::record(
            "deliver",
            SpanKind::Consumer,
            &received.trace,
            (received.at, applied),
            || {
                vec![
                    KeyValue::new("order.id", envelope.aggregate_id.to_string()),
                    KeyValue::new("messaging.message.id", envelope.event_id.to_string()),
                    KeyValue::new("messaging.batch.message_count", size),
                ]
            },
            None,
        );
    }
    traces::record_linked(
        "project batch",
        (started, applied),
        batch.iter().map(|received| received.trace.clone()),
        || vec![KeyValue::new("messaging.batch.message_count", size)],
    );
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
