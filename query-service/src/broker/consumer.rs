use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use service_support::RequestId;
use shared_events::EventEnvelope;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::unusable::{route_unusable, Disposition, RepublishError};
use super::{declare_topology, retry_backoff, BrokerStatus};
use crate::config::BrokerSettings;
use crate::metrics::ProjectionMetrics;
use crate::projection::{Outcome, Projector};

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
/// Deliveries are spread over `lanes` by the event's ordering key (the customer), so one
/// customer's events are applied one after another while different customers proceed in
/// parallel. A delivery is acknowledged only after its event is in MongoDB; while MongoDB
/// fails, its lane retries the same event with backoff, so nothing is dropped and the
/// customer's later events wait behind it. Unacknowledged deliveries (at most `prefetch`) go
/// back to the queue if the connection is lost, and are then applied idempotently.
pub struct EventConsumer {
    settings: BrokerSettings,
    projector: Projector,
    status: BrokerStatus,
    metrics: ProjectionMetrics,
}

type Lane = mpsc::Sender<(Delivery, EventEnvelope)>;

impl EventConsumer {
    pub fn new(
        settings: BrokerSettings,
        projector: Projector,
        status: BrokerStatus,
        metrics: ProjectionMetrics,
    ) -> Self {
        Self {
            settings,
            projector,
            status,
            metrics,
        }
    }

    /// Consumes until `shutdown` is cancelled, reconnecting with backoff when the broker fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = retry_backoff();
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
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

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), ConsumeError> {
        let connection = Connection::connect(
            &self.settings.url,
            ConnectionProperties::default().with_connection_name("query-service".into()),
        )
        .await?;
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
        self.status.set_connected(true);
        log::info!("event consumer attached to queue {}", self.settings.queue);

        let mut lanes = JoinSet::new();
        let senders: Vec<Lane> = (0..self.settings.lanes)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(usize::from(self.settings.prefetch));
                lanes.spawn(apply_in_order(
                    receiver,
                    self.projector.clone(),
                    self.metrics.clone(),
                    shutdown.clone(),
                ));
                sender
            })
            .collect();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(ended) = lanes.join_next() => {
                    // A lane only ends early when it could not acknowledge: the channel is gone.
                    ended.unwrap_or(Ok(()))?;
                }
                next = deliveries.next() => match next {
                    Some(delivery) => {
                        let delivery = delivery?;
                        self.metrics.consumed();
                        match EventEnvelope::decode(&delivery.data) {
                            Ok(envelope) => {
                                let lane = &senders[Projector::lane(&envelope, senders.len())];
                                if lane.send((delivery, envelope)).await.is_err() {
                                    return Err(ConsumeError::Cancelled);
                                }
                            }
                            Err(error) => self.set_aside(&republisher, delivery, &error).await?,
                        }
                    }
                    None => return Err(ConsumeError::Cancelled),
                },
            }
        }
        // Stop taking deliveries; let the lanes finish what they hold, then close. Whatever is
        // still unacknowledged goes back to the queue.
        drop(senders);
        while let Some(ended) = lanes.join_next().await {
            if let Ok(Err(error)) = ended {
                log::warn!("a lane stopped with an error during shutdown: {error}");
            }
        }
        connection.close(200, "shutting down".into()).await?;
        Ok(())
    }

    async fn set_aside(
        &self,
        republisher: &lapin::Channel,
        delivery: Delivery,
        error: &shared_events::DecodeError,
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

/// Applies one lane's events in delivery order, acknowledging each after it is stored.
async fn apply_in_order(
    mut receiver: mpsc::Receiver<(Delivery, EventEnvelope)>,
    projector: Projector,
    metrics: ProjectionMetrics,
    shutdown: CancellationToken,
) -> Result<(), lapin::Error> {
    while let Some((delivery, envelope)) = receiver.recv().await {
        let request_id = RequestId::parse(&envelope.correlation_id);
        let applied = RequestId::scope_if(
            request_id,
            apply_one(delivery, &envelope, &projector, &metrics, &shutdown),
        );
        if !applied.await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Applies one event, retrying while MongoDB fails, and acknowledges it. `false` when
/// shutdown came first: the event is left unacknowledged for the broker to redeliver.
async fn apply_one(
    delivery: Delivery,
    envelope: &EventEnvelope,
    projector: &Projector,
    metrics: &ProjectionMetrics,
    shutdown: &CancellationToken,
) -> Result<bool, lapin::Error> {
    let mut backoff = retry_backoff();
    let outcome = loop {
        match projector.apply(envelope).await {
            Ok(outcome) => break outcome,
            Err(error) => {
                metrics.retried("store_unavailable");
                let delay = backoff.next().unwrap_or_default();
                log::warn!(
                    "cannot apply event {} ({error}); retrying in {delay:?}",
                    envelope.event_id
                );
                tokio::select! {
                    // Left unacknowledged: the broker redelivers it to whoever consumes next.
                    () = shutdown.cancelled() => return Ok(false),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    delivery.ack(BasicAckOptions::default()).await?;
    match outcome {
        Outcome::Applied => {
            metrics.applied(envelope);
            log::info!(
                "applied {} v{} {} for order {}",
                envelope.event_type,
                envelope.schema_version,
                envelope.event_id,
                envelope.aggregate_id
            );
        }
        Outcome::AlreadyApplied => {
            metrics.duplicate();
            log::info!(
                "skipped {} {}: already applied",
                envelope.event_type,
                envelope.event_id
            );
        }
    }
    Ok(true)
}
