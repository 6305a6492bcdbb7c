use std::sync::Arc;
use std::time::Duration;

use service_support::RequestId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use service_support::broker::{reconnect_backoff, BrokerStatus};

use crate::broker::{EventPublisher, PublishError};
use crate::config::{BrokerSettings, OutboxSettings};
use crate::metrics::RelayMetrics;
use crate::store::{Store, StoreError};

/// Wakes the relay right after a commit, so events leave without waiting for the next poll.
#[derive(Debug, Clone, Default)]
pub struct RelayWakeup(Arc<Notify>);

impl RelayWakeup {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Why a relay pass stopped early.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("the broker connection is down")]
    BrokerDown,
    /// Nacks or missing confirms: on a cluster, a channel opened while a queue's leader was
    /// failing over can keep refusing; a new connection, to the next node, does not.
    #[error("the broker refused or did not confirm {0} events")]
    Refused(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct OutboxRelay {
    store: Store,
    broker: BrokerSettings,
    settings: OutboxSettings,
    wakeup: RelayWakeup,
    status: BrokerStatus,
    metrics: RelayMetrics,
}

impl OutboxRelay {
    pub fn new(
        store: Store,
        broker: BrokerSettings,
        settings: OutboxSettings,
        wakeup: RelayWakeup,
        status: BrokerStatus,
        metrics: RelayMetrics,
    ) -> Self {
        Self {
            store,
            broker,
            settings,
            wakeup,
            status,
            metrics,
        }
    }

    /// Publishes pending events until `shutdown` is cancelled, reconnecting to the broker with
    /// backoff whenever the connection fails. On shutdown it drains what is pending once more.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = reconnect_backoff();
        while !shutdown.is_cancelled() {
            let publisher = match EventPublisher::connect(&self.broker.url).await {
                Ok(publisher) => {
                    log::info!("outbox relay connected to the broker");
                    self.metrics.connections.inc();
                    self.status.set_connected(true);
                    backoff = reconnect_backoff();
                    publisher
                }
                Err(error) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    log::warn!(
                        "outbox relay cannot reach the broker ({error}); retrying in {delay:?}"
                    );
                    self.sleep_unless_shutdown(delay, &shutdown).await;
                    continue;
                }
            };
            self.publish_until_broker_fails(&publisher, &shutdown).await;
            self.status.set_connected(false);
        }
        log::info!("outbox relay stopped");
    }

    async fn publish_until_broker_fails(
        &self,
        publisher: &EventPublisher,
        shutdown: &CancellationToken,
    ) {
        let mut store_backoff = reconnect_backoff();
        loop {
            match self.publish_pending(publisher).await {
                Ok(full_batch) => {
                    store_backoff = reconnect_backoff();
                    if full_batch {
                        continue;
                    }
                    if shutdown.is_cancelled() {
                        return;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = self.wakeup.woken() => {}
                        () = tokio::time::sleep(self.settings.poll_interval()) => {}
                    }
                    // Notice a connection that died while idle, so readiness tells the truth.
                    if !publisher.is_connected() {
                        log::warn!("outbox relay lost the broker connection; reconnecting");
                        return;
                    }
                }
                Err(PassError::BrokerDown) => {
                    log::warn!("outbox relay lost the broker connection; reconnecting");
                    return;
                }
                Err(error @ PassError::Refused(_)) => {
                    log::warn!("outbox relay: {error}; reconnecting");
                    return;
                }
                Err(PassError::Store(error)) => {
                    let delay = store_backoff.next().unwrap_or(Duration::from_secs(10));
                    log::warn!(
                        "outbox relay cannot read the outbox ({error}); retrying in {delay:?}"
                    );
                    if shutdown.is_cancelled() {
                        return;
                    }
                    self.sleep_unless_shutdown(delay, shutdown).await;
                }
            }
        }
    }

    /// Claims one batch, publishes it and records the outcome of every row.
    /// Returns whether the batch was full, that is whether more rows may be waiting.
    async fn publish_pending(&self, publisher: &EventPublisher) -> Result<bool, PassError> {
        let batch = self
            .store
            .claim_outbox_batch(self.settings.batch_size, self.settings.claim_lease())
            .await?;
        if batch.is_empty() {
            return Ok(false);
        }
        let outcomes = publisher
            .publish_all(&batch, self.settings.confirm_timeout())
            .await;
        let mut published = Vec::with_capacity(batch.len());
        let mut refused = 0;
        for (message, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    self.metrics.confirmed_by_broker(message);
                    published.push(message.id);
                }
                Err(error) => {
                    if matches!(error, PublishError::Nacked | PublishError::Unconfirmed(_)) {
                        refused += 1;
                    }
                    self.metrics.failed.inc();
                    RequestId::scope_if(message.request_id(), async {
                        log::warn!("event {} not published: {error}", message.event_id);
                        self.store
                            .release_for_retry(
                                message.id,
                                error.to_string(),
                                self.settings.retry_delay(),
                            )
                            .await
                    })
                    .await?;
                }
            }
        }
        let published_count = published.len();
        if !published.is_empty() {
            self.store.mark_published(published).await?;
            self.metrics.confirmed.inc_by(published_count as u64);
            log::debug!("outbox relay published {published_count} events");
        }
        if !publisher.is_connected() {
            return Err(PassError::BrokerDown);
        }
        if refused > 0 {
            return Err(PassError::Refused(refused));
        }
        Ok(batch.len() == self.settings.batch_size as usize)
    }

    async fn sleep_unless_shutdown(&self, delay: Duration, shutdown: &CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}
