use std::time::Duration;

use service_support::traces::{self, FutureExt};
use service_support::RequestId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use service_support::broker::{reconnect_backoff, BrokerStatus};

use crate::broker::{EventPublisher, PendingConfirms, PublishError};
use crate::config::{BrokerSettings, OutboxSettings};
use crate::metrics::RelayMetrics;
use crate::store::{OutboxMessage, Store, StoreError};

/// Why the relay leaves a broker connection.
#[derive(Debug, thiserror::Error)]
enum BrokerTrouble {
    #[error("the broker connection is down")]
    ConnectionLost,
    /// Nacks or missing confirms: on a cluster, a channel opened while a queue's leader was
    /// failing over can keep refusing; a new connection, to the next node, does not.
    #[error("the broker refused or did not confirm {0} events")]
    Refused(usize),
}

/// What the settled messages say of the connection, if it must be left.
fn broker_trouble(settled: &[(OutboxMessage, Result<(), PublishError>)]) -> Option<BrokerTrouble> {
    let mut refused = 0;
    for (_, outcome) in settled {
        match outcome {
            Err(PublishError::Connection(_)) => return Some(BrokerTrouble::ConnectionLost),
            Err(PublishError::Nacked | PublishError::Unconfirmed(_)) => refused += 1,
            Ok(()) | Err(PublishError::Unroutable(_) | PublishError::Encode(_)) => {}
        }
    }
    (refused > 0).then_some(BrokerTrouble::Refused(refused))
}

pub struct OutboxRelay {
    store: Store,
    broker: BrokerSettings,
    settings: OutboxSettings,
    status: BrokerStatus,
    metrics: RelayMetrics,
}

impl OutboxRelay {
    pub fn new(
        store: Store,
        broker: BrokerSettings,
        settings: OutboxSettings,
        status: BrokerStatus,
        metrics: RelayMetrics,
    ) -> Self {
        Self {
            store,
            broker,
            settings,
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

    /// Claims and publishes batches while the confirms of earlier ones are pending (at most
    /// `outbox.max_batches_in_flight` of them), and settles each batch as its confirms arrive:
    /// marks its rows published or hands them back. Returns when the broker fails or on
    /// shutdown, once every batch published is settled.
    async fn publish_until_broker_fails(
        &self,
        publisher: &EventPublisher,
        shutdown: &CancellationToken,
    ) {
        let (in_flight, published) = mpsc::channel(self.settings.max_batches_in_flight);
        let broker_failed = CancellationToken::new();
        tokio::join!(
            self.claim_and_publish(publisher, in_flight, shutdown, &broker_failed),
            self.settle(published, shutdown, &broker_failed),
        );
    }

    async fn claim_and_publish(
        &self,
        publisher: &EventPublisher,
        in_flight: mpsc::Sender<PendingConfirms>,
        shutdown: &CancellationToken,
        broker_failed: &CancellationToken,
    ) {
        let mut store_backoff = reconnect_backoff();
        while !broker_failed.is_cancelled() {
            // A connection that died while publishing or while idle is noticed before more is
            // claimed, and readiness tells the truth.
            if !publisher.is_connected() {
                log::warn!("outbox relay lost the broker connection; reconnecting");
                return;
            }
            let batch = match self
                .store
                .claim_outbox_batch(self.settings.batch_size, self.settings.claim_lease())
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    let delay = store_backoff.next().unwrap_or(Duration::from_secs(10));
                    log::warn!(
                        "outbox relay cannot read the outbox ({error}); retrying in {delay:?}"
                    );
                    if shutdown.is_cancelled() {
                        return;
                    }
                    self.sleep_unless_shutdown(delay, shutdown).await;
                    continue;
                }
            };
            store_backoff = reconnect_backoff();
            let full_batch = batch.len() == self.settings.batch_size as usize;
            if !batch.is_empty() {
                let pending = publisher
                    .publish_all(batch, self.settings.confirm_timeout())
                    .await;
                if in_flight.send(pending).await.is_err() {
                    return;
                }
            }
            if full_batch {
                continue;
            }
            if shutdown.is_cancelled() {
                return;
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = broker_failed.cancelled() => return,
                () = self.store.events_committed() => {}
                () = tokio::time::sleep(self.settings.poll_interval()) => {}
            }
        }
    }

    /// Settles the batches published, in order, until the publishing side is done. When the
    /// broker refused or lost one, cancels `broker_failed` before recording it, so that no more
    /// is published on that connection. Rows whose outcome cannot be recorded by shutdown stay
    /// claimed until their lease ends and are published again then.
    async fn settle(
        &self,
        mut published: mpsc::Receiver<PendingConfirms>,
        shutdown: &CancellationToken,
        broker_failed: &CancellationToken,
    ) {
        let mut store_backoff = reconnect_backoff();
        while let Some(pending) = published.recv().await {
            // While the broker confirms, the batches published since are recorded with this
            // one, in one statement.
            let mut settled = pending.settled().await;
            while broker_trouble(&settled).is_none() {
                let Ok(next) = published.try_recv() else {
                    break;
                };
                settled.extend(next.settled().await);
            }
            if let Some(trouble) = broker_trouble(&settled) {
                if !broker_failed.is_cancelled() {
                    log::warn!("outbox relay: {trouble}; reconnecting");
                    broker_failed.cancel();
                }
            }
            while let Err(error) = self.record(&settled).await {
                let delay = store_backoff.next().unwrap_or(Duration::from_secs(10));
                log::warn!(
                    "outbox relay cannot record what the broker confirmed ({error}); \
                     retrying in {delay:?}"
                );
                if shutdown.is_cancelled() {
                    break;
                }
                self.sleep_unless_shutdown(delay, shutdown).await;
            }
        }
    }

    /// Records the outcome of every message settled: the confirmed ones marked published, the
    /// others handed back for another attempt.
    async fn record(
        &self,
        settled: &[(OutboxMessage, Result<(), PublishError>)],
    ) -> Result<(), StoreError> {
        let mut published = Vec::with_capacity(settled.len());
        let mut failed = Vec::new();
        for (message, outcome) in settled {
            match outcome {
                Ok(()) => published.push(message),
                Err(error) => {
                    RequestId::scope_if(
                        message.request_id(),
                        async {
                            log::warn!("event {} not published: {error}", message.event_id);
                        }
                        .with_context(traces::extract(message.trace_parent.as_deref())),
                    )
                    .await;
                    failed.push((message.id, error.to_string()));
                }
            }
        }
        if !failed.is_empty() {
            let count = failed.len();
            self.store
                .release_for_retry(failed, self.settings.retry_delay())
                .await?;
            self.metrics.failed.inc_by(count as u64);
        }
        if !published.is_empty() {
            let count = published.len();
            self.store
                .mark_published(published.iter().map(|message| message.id).collect())
                .await?;
            for message in published {
                self.metrics.confirmed_by_broker(message);
            }
            self.metrics.confirmed.inc_by(count as u64);
            log::debug!("outbox relay published {count} events");
        }
        Ok(())
    }

    async fn sleep_unless_shutdown(&self, delay: Duration, shutdown: &CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}
