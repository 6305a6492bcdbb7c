use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use shared_events::EventEnvelope;
use tokio_util::sync::CancellationToken;

use super::unusable::{route_unusable, Disposition, RepublishError};
use super::{declare_topology, retry_backoff, BrokerStatus};
use crate::config::BrokerSettings;
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

/// Feeds the projection from the queue. A delivery is acknowledged only after its event is
/// in MongoDB; while MongoDB fails, the same delivery is retried with backoff, so nothing is
/// dropped and later deliveries wait (up to the prefetch count) in order behind it.
pub struct EventConsumer {
    settings: BrokerSettings,
    projector: Projector,
    status: BrokerStatus,
}

impl EventConsumer {
    pub fn new(settings: BrokerSettings, projector: Projector, status: BrokerStatus) -> Self {
        Self {
            settings,
            projector,
            status,
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
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = deliveries.next() => next,
            };
            match next {
                Some(delivery) => self.handle(delivery?, &republisher, shutdown).await?,
                None => return Err(ConsumeError::Cancelled),
            }
        }
        // Unacknowledged deliveries go back to the queue when the connection closes.
        connection.close(200, "shutting down".into()).await?;
        Ok(())
    }

    async fn handle(
        &self,
        delivery: Delivery,
        republisher: &Channel,
        shutdown: &CancellationToken,
    ) -> Result<(), ConsumeError> {
        let envelope = match EventEnvelope::decode(&delivery.data) {
            Ok(envelope) => envelope,
            Err(error) => {
                match route_unusable(republisher, &self.settings, &delivery, &error).await? {
                    Disposition::Retry { attempt } => log::warn!(
                        "unusable message ({error}); attempt {attempt} of {}, retrying in {} ms",
                        self.settings.max_attempts,
                        self.settings.retry_delay_ms
                    ),
                    Disposition::DeadLettered { attempts } => log::error!(
                        "unusable message ({error}); dead-lettered after {attempts} attempts"
                    ),
                }
                delivery.ack(BasicAckOptions::default()).await?;
                return Ok(());
            }
        };
        let mut backoff = retry_backoff();
        loop {
            match self.projector.apply(&envelope).await {
                Ok(outcome) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                    match outcome {
                        Outcome::Applied => log::info!(
                            "applied {} v{} {} for order {}",
                            envelope.event_type,
                            envelope.schema_version,
                            envelope.event_id,
                            envelope.aggregate_id
                        ),
                        Outcome::AlreadyApplied => log::info!(
                            "skipped {} {}: already applied",
                            envelope.event_type,
                            envelope.event_id
                        ),
                    }
                    return Ok(());
                }
                Err(error) => {
                    let delay = backoff.next().unwrap_or_default();
                    log::warn!(
                        "cannot apply event {} ({error}); retrying in {delay:?}",
                        envelope.event_id
                    );
                    tokio::select! {
                        // Left unacknowledged: the broker redelivers it to whoever consumes next.
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}
