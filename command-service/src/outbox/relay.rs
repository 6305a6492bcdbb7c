use std::time::Duration;

use service_support::traces::{self, FutureExt};
use service_support::RequestId;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use service_support::broker::{reconnect_backoff, BrokerStatus};

use crate::broker::{EventPublisher, PendingConfirms, PublishError};
use crate::config::{BrokerSettings, OutboxSettings};
use crate::metrics::RelayMetrics;
use crate::outbox::{HandedOff, HandoffReceiver};
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

/// The events of `first` and of the commits handed over after it, up to `batch_size`, whose
/// claim outlasts `deadline` (their confirm's): a row whose claim could end first is left to
/// the relay that claims it then, so that no row is ever published by two relays at once.
fn still_claimed(
    first: HandedOff,
    handed_off: &mut HandoffReceiver,
    batch_size: usize,
    deadline: Instant,
) -> Vec<OutboxMessage> {
    let mut batch = Vec::new();
    let mut next = Some(first);
    while let Some(commit) = next {
        if commit.claimed_until > deadline {
            batch.extend(commit.messages);
        }
        next = (batch.len() < batch_size)
            .then(|| handed_off.try_next())
            .flatten();
    }
    batch
}

/// What the settled messages say of the connection, if it must be left.
fn broker_trouble(settled: &[(OutboxMessage, Result<(), PublishError>)]) -> Option<BrokerTrouble> {
    let mut refused = 0;
    for (_, outcome) in settled {
        match outcome {
            Err(PublishError::Connection(_)) => return Some(BrokerTrouble::ConnectionLost),
            Err(PublishError::Nacked | PublishError::Unconfirmed(_)) => refused += 1,
            Ok(()) | Err(PublishError::Unroutable(_)) => {}
        }
    }
    (refused > 0).then_some(BrokerTrouble::Refused(refused))
}

pub struct OutboxRelay {
    store: Store,
    handed_off: Mutex<HandoffReceiver>,
    broker: BrokerSettings,
    settings: OutboxSettings,
    status: BrokerStatus,
    metrics: RelayMetrics,
}

impl OutboxRelay {
    pub fn new(
        store: Store,
        handed_off: HandoffReceiver,
        broker: BrokerSettings,
        settings: OutboxSettings,
        status: BrokerStatus,
        metrics: RelayMetrics,
    ) -> Self {
        Self {
            store,
            handed_off: Mutex::new(handed_off),
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

    /// Publishes what commits hand over and what it claims, while the confirms of earlier
    /// batches are pending (at most `outbox.max_batches_in_flight` of them), and settles each
    /// batch as its confirms arrive: marks its rows published or hands them back. Returns when
    /// the broker fails or on shutdown, once every batch published is settled.
    async fn publish_until_broker_fails(
        &self,
        publisher: &EventPublisher,
        shutdown: &CancellationToken,
    ) {
        let mut handed_off = self.handed_off.lock().await;
        let (in_flight, published) = mpsc::channel(self.settings.max_batches_in_flight);
        let broker_failed = CancellationToken::new();
        handed_off.set_taking(true);
        self.metrics.connections.inc();
        self.status.set_connected(true);
        tokio::join!(
            async {
                self.publish(
                    publisher,
                    &mut handed_off,
                    in_flight,
                    shutdown,
                    &broker_failed,
                )
                .await;
                handed_off.set_taking(false);
            },
            self.settle(published, shutdown, &broker_failed),
        );
    }

    /// Publishes each commit's events as they are handed over and claims the rows that were
    /// not (appended while no place was free, handed back after a failure, or left by a relay
    /// that crashed): at once on connecting, when a commit says it appended rows unclaimed, and
    /// every `outbox.poll_interval_ms`. On shutdown, publishes what is waiting once more.
    async fn publish(
        &self,
        publisher: &EventPublisher,
        handed_off: &mut HandoffReceiver,
        in_flight: mpsc::Sender<PendingConfirms>,
        shutdown: &CancellationToken,
        broker_failed: &CancellationToken,
    ) {
        let mut store_backoff = reconnect_backoff();
        let mut next_claim = Instant::now();
        let mut stopping = false;
        while !broker_failed.is_cancelled() {
            // A connection that died while publishing or while idle is noticed before more is
            // published, and readiness tells the truth.
            if !publisher.is_connected() {
                log::warn!("outbox relay lost the broker connection; reconnecting");
                return;
            }
            let claim_due = Instant::now() >= next_claim;
            let handed = if stopping || !claim_due {
                handed_off.try_next()
            } else {
                None
            };
            let mut last = false;
            let batch = match handed {
                Some(first) => self.handed_over(first, handed_off),
                None if stopping || claim_due => {
                    match self
                        .store
                        .claim_outbox_batch(self.settings.batch_size, self.settings.claim_lease())
                        .await
                    {
                        Ok(batch) => {
                            store_backoff = reconnect_backoff();
                            self.metrics.claimed.inc_by(batch.len() as u64);
                            if batch.len() < self.settings.batch_size as usize {
                                next_claim = Instant::now() + self.settings.poll_interval();
                                last = stopping;
                            }
                            batch
                        }
                        Err(error) => {
                            let delay = store_backoff.next().unwrap_or(Duration::from_secs(10));
                            log::warn!(
                                "outbox relay cannot read the outbox ({error}); \
                                 retrying in {delay:?}"
                            );
                            if stopping {
                                return;
                            }
                            next_claim = Instant::now() + delay;
                            continue;
                        }
                    }
                }
                None => {
                    let claimable = handed_off.claimable();
                    tokio::select! {
                        biased;
                        () = broker_failed.cancelled() => return,
                        () = shutdown.cancelled() => {
                            // Commits from now on append unclaimed, for the next relay to claim.
                            handed_off.set_taking(false);
                            stopping = true;
                            continue;
                        }
                        handed = handed_off.next() => match handed {
                            Some(first) => self.handed_over(first, handed_off),
                            None => return,
                        },
                        () = claimable => {
                            next_claim = Instant::now();
                            continue;
                        }
                        () = tokio::time::sleep_until(next_claim) => continue,
                    }
                }
            };
            if !self.publish_batch(publisher, batch, &in_flight).await || last {
                return;
            }
        }
    }

    /// The events of `first` and of the commits handed over after it, up to a batch, that are
    /// still claimed at their confirm's deadline.
    fn handed_over(
        &self,
        first: HandedOff,
        handed_off: &mut HandoffReceiver,
    ) -> Vec<OutboxMessage> {
        let batch = still_claimed(
            first,
            handed_off,
            self.settings.batch_size as usize,
            Instant::now() + self.settings.confirm_timeout(),
        );
        self.metrics.handed_off.inc_by(batch.len() as u64);
        batch
    }

    /// Publishes `batch` and passes its pending confirms to the settler; `false` once the
    /// settler is gone.
    async fn publish_batch(
        &self,
        publisher: &EventPublisher,
        batch: Vec<OutboxMessage>,
        in_flight: &mpsc::Sender<PendingConfirms>,
    ) -> bool {
        if batch.is_empty() {
            return true;
        }
        let pending = publisher
            .publish_all(batch, self.settings.confirm_timeout())
            .await;
        in_flight.send(pending).await.is_ok()
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
            let mut settled = self.confirmed(pending).await;
            while broker_trouble(&settled).is_none() {
                let Ok(next) = published.try_recv() else {
                    break;
                };
                settled.extend(self.confirmed(next).await);
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

    /// Awaits the outcome of every message of `pending`, and times each confirmed one from its
    /// commit.
    async fn confirmed(
        &self,
        pending: PendingConfirms,
    ) -> Vec<(OutboxMessage, Result<(), PublishError>)> {
        let settled = pending.settled().await;
        for (message, outcome) in &settled {
            if outcome.is_ok() {
                self.metrics.confirmed_by_broker(message);
            }
        }
        settled
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outbox::handoff::tests::message;
    use crate::outbox::Handoff;

    fn ids(batch: &[OutboxMessage]) -> Vec<i64> {
        batch.iter().map(|message| message.id).collect()
    }

    #[tokio::test]
    async fn a_batch_takes_the_commits_handed_over_up_to_its_size() {
        let (handoff, mut receiver) = Handoff::new(Duration::from_secs(30), 8);
        receiver.set_taking(true);
        for id in [2, 4, 6] {
            handoff.committed(handoff.reserve(), vec![message(id), message(id + 1)]);
        }
        let first = receiver.try_next().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);

        let batch = still_claimed(first, &mut receiver, 3, deadline);

        // Whole commits: the second fills the batch past its size, the third waits.
        assert_eq!(ids(&batch), [2, 3, 4, 5]);
        assert_eq!(ids(&receiver.try_next().unwrap().messages), [6, 7]);
    }

    #[tokio::test]
    async fn events_whose_claim_ends_before_their_confirm_s_deadline_are_left_to_a_claim() {
        let (handoff, mut receiver) = Handoff::new(Duration::from_secs(30), 8);
        receiver.set_taking(true);
        handoff.committed(handoff.reserve(), vec![message(2)]);
        let expiring = HandedOff {
            messages: vec![message(1)],
            claimed_until: Instant::now() + Duration::from_secs(5),
        };
        let deadline = Instant::now() + Duration::from_secs(10);

        let batch = still_claimed(expiring, &mut receiver, 100, deadline);

        assert_eq!(ids(&batch), [2]);
    }
}
