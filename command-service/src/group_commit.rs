//! Group commit: orders posted at about the same time are committed together, in one
//! PostgreSQL transaction, instead of one transaction each.
//!
//! A handler hands its order to a bounded queue and waits for that order's own outcome. A
//! committer takes what is queued (up to `max_size` orders, waiting at most `max_wait_ms`
//! after the first for more), commits it as one group with [`Store::place_orders`], answers
//! every waiting handler and wakes the relay once. While one group commits the next one
//! gathers, so the busier the service, the larger the groups and the cheaper each order.
//! Every answer still comes after its own order is durably committed with its event.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::GroupCommitSettings;
use crate::outbox::RelayWakeup;
use crate::store::{OrderPlacement, PlaceOrderError, Placement, Store, StoreError};

type Outcome = Result<Placement, PlaceOrderError>;

/// An order waiting in the queue, and where its outcome goes.
struct Queued {
    placement: OrderPlacement,
    reply: oneshot::Sender<Outcome>,
}

/// How handlers place orders: through the committers' queue, or, with group commit off, each
/// in its own transaction. Cheap to clone.
#[derive(Clone)]
pub struct OrderDesk {
    queue: Option<mpsc::Sender<Queued>>,
    store: Store,
    relay: RelayWakeup,
}

impl OrderDesk {
    /// The desk, and the committers that must run for it when group commit is on.
    pub fn new(
        store: Store,
        relay: RelayWakeup,
        settings: GroupCommitSettings,
        group_sizes: Histogram,
    ) -> (Self, Option<Committers>) {
        if !settings.enabled {
            let desk = Self {
                queue: None,
                store,
                relay,
            };
            return (desk, None);
        }
        let (sender, receiver) = mpsc::channel(settings.queue_capacity);
        let committers = Committers {
            queue: Arc::new(Mutex::new(receiver)),
            store: store.clone(),
            relay: relay.clone(),
            settings,
            group_sizes,
        };
        let desk = Self {
            queue: Some(sender),
            store,
            relay,
        };
        (desk, Some(committers))
    }

    /// Places the order and answers once it is committed (or refused).
    pub async fn place(&self, placement: OrderPlacement) -> Outcome {
        let Some(queue) = &self.queue else {
            let outcome = self.store.place_orders(vec![placement]).await.remove(0);
            if matches!(outcome, Ok(Placement::Placed(_))) {
                self.relay.wake();
            }
            return outcome;
        };
        let (reply, outcome) = oneshot::channel();
        queue
            .send(Queued { placement, reply })
            .await
            .map_err(|_| StoreError::Stopping)?;
        outcome.await.map_err(|_| StoreError::Stopping)?
    }
}

/// The tasks that take groups from the queue and commit them.
pub struct Committers {
    queue: Arc<Mutex<mpsc::Receiver<Queued>>>,
    store: Store,
    relay: RelayWakeup,
    settings: GroupCommitSettings,
    group_sizes: Histogram,
}

impl Committers {
    /// Commits groups until `shutdown`, then commits what is still queued and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let committers = (0..self.settings.committers).map(|_| self.commit_groups(&shutdown));
        join_all(committers).await;
        log::info!("group commit stopped");
    }

    async fn commit_groups(&self, shutdown: &CancellationToken) {
        while let Some(group) = self.next_group(shutdown).await {
            self.group_sizes.observe(group.len() as f64);
            let (placements, replies): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|queued| (queued.placement, queued.reply))
                .unzip();
            let outcomes = self.store.place_orders(placements).await;
            if outcomes
                .iter()
                .any(|outcome| matches!(outcome, Ok(Placement::Placed(_))))
            {
                self.relay.wake();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A handler that is gone (its client hung up) has nobody to tell.
                let _ = reply.send(outcome);
            }
        }
    }

    /// The next group: the first order to arrive, then whatever else is queued or arrives
    /// within `max_wait` of it, up to `max_size`. `None` once shut down with nothing queued.
    async fn next_group(&self, shutdown: &CancellationToken) -> Option<Vec<Queued>> {
        let mut queue = self.queue.lock().await;
        let first = tokio::select! {
            biased;
            queued = queue.recv() => queued?,
            () = shutdown.cancelled() => queue.try_recv().ok()?,
        };
        let deadline = Instant::now() + Duration::from_millis(self.settings.max_wait_ms);
        let mut group = vec![first];
        while group.len() < self.settings.max_size {
            match queue.try_recv() {
                Ok(queued) => group.push(queued),
                Err(_) if self.settings.max_wait_ms == 0 || shutdown.is_cancelled() => break,
                Err(_) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(queued)) => group.push(queued),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        Some(group)
    }
}
