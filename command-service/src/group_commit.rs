//! Group commit: orders posted at about the same time are committed together, in one
//! PostgreSQL transaction, instead of one transaction each.
//!
//! A handler hands its order to a bounded queue and waits for that order's own outcome. A
//! committer takes what is queued (up to `max_size` orders, waiting for more while they keep
//! arriving less than `max_gap_ms` apart, at most `max_wait_ms` after the first), commits it as
//! one group with [`Store::place_orders`] and answers every waiting handler (the store tells
//! the relay of the group's events). While one group commits the next one gathers, so the
//! busier the service, the larger the groups and the cheaper each order. Every answer still
//! comes after its own order is durably committed with its event.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::GroupCommitSettings;
use crate::metrics::GroupCommitMetrics;
use crate::store::{GroupOutcomes, OrderPlacement, PlaceOrderError, Placement, Store, StoreError};

type Outcome = Result<Placement, PlaceOrderError>;

/// An order waiting in the queue, and where its outcome goes.
struct Queued {
    placement: OrderPlacement,
    reply: oneshot::Sender<Outcome>,
}

/// How handlers place orders: through the committers' queue, or, with group commit off, each
/// in its own transaction. Cheap to clone.
#[derive(Clone)]
pub struct OrderDesk(Route);

#[derive(Clone)]
enum Route {
    Queue(mpsc::Sender<Queued>),
    Alone(Store),
}

impl OrderDesk {
    /// The desk, and the committers that must run for it when group commit is on.
    pub fn new(
        store: Store,
        settings: GroupCommitSettings,
        metrics: GroupCommitMetrics,
    ) -> (Self, Option<Committers>) {
        if !settings.enabled {
            return (Self(Route::Alone(store)), None);
        }
        let (sender, receiver) = mpsc::channel(settings.queue_capacity);
        let committers = Committers {
            queue: Arc::new(Mutex::new(receiver)),
            store,
            settings,
            metrics,
        };
        (Self(Route::Queue(sender)), Some(committers))
    }

    /// Places the order and answers once it is committed (or refused).
    pub async fn place(&self, placement: OrderPlacement) -> Outcome {
        match &self.0 {
            Route::Alone(store) => store.place_orders(vec![placement]).await.outcomes.remove(0),
            Route::Queue(queue) => {
                let (reply, outcome) = oneshot::channel();
                queue
                    .send(Queued { placement, reply })
                    .await
                    .map_err(|_| StoreError::Stopping)?;
                outcome.await.map_err(|_| StoreError::Stopping)?
            }
        }
    }
}

/// The tasks that take groups from the queue and commit them.
pub struct Committers {
    queue: Arc<Mutex<mpsc::Receiver<Queued>>>,
    store: Store,
    settings: GroupCommitSettings,
    metrics: GroupCommitMetrics,
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
            self.metrics.sizes.observe(group.len() as f64);
            let (placements, replies): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|queued| (queued.placement, queued.reply))
                .unzip();
            let GroupOutcomes { outcomes, split } = self.store.place_orders(placements).await;
            if split {
                self.metrics.splits.inc();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A handler that is gone (its client hung up) has nobody to tell.
                let _ = reply.send(outcome);
            }
        }
    }

    /// The next group: the first order to arrive, then whatever else is queued or arrives
    /// within `max_gap` of the order before it and `max_wait` of the first, up to `max_size`.
    /// `None` once shut down with nothing queued.
    async fn next_group(&self, shutdown: &CancellationToken) -> Option<Vec<Queued>> {
        let mut queue = self.queue.lock().await;
        let first = tokio::select! {
            biased;
            queued = queue.recv() => queued?,
            () = shutdown.cancelled() => queue.try_recv().ok()?,
        };
        let deadline = Instant::now() + Duration::from_millis(self.settings.max_wait_ms);
        let gap = Duration::from_millis(self.settings.max_gap_ms);
        let mut group = vec![first];
        while group.len() < self.settings.max_size {
            match queue.try_recv() {
                Ok(queued) => group.push(queued),
                Err(_) if self.settings.max_wait_ms == 0 || shutdown.is_cancelled() => break,
                Err(_) => {
                    let closes = deadline.min(Instant::now() + gap);
                    match tokio::time::timeout_at(closes, queue.recv()).await {
                        Ok(Some(queued)) => group.push(queued),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        Some(group)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;
    use crate::config::DatabaseSettings;
    use crate::domain::{Customer, Description, EmailAddress, NewOrder, PersonName, Quantity};

    /// Committers whose store is never reached: these tests only gather groups.
    fn committers(
        max_size: usize,
        max_wait_ms: u64,
        max_gap_ms: u64,
    ) -> (mpsc::Sender<Queued>, Committers) {
        let store = Store::new(&DatabaseSettings {
            url: SecretString::from("postgres://unreachable.invalid/orders"),
            pool_size: 1,
            acquire_timeout_ms: 1,
            statement_timeout_ms: 1,
        });
        let (desk, committers) = OrderDesk::new(
            store,
            GroupCommitSettings {
                enabled: true,
                max_size,
                max_wait_ms,
                max_gap_ms,
                committers: 1,
                queue_capacity: 100,
            },
            GroupCommitMetrics::default(),
        );
        let Route::Queue(queue) = desk.0 else {
            panic!("group commit is on");
        };
        (queue, committers.unwrap())
    }

    fn queued() -> Queued {
        let order = NewOrder {
            description: Description::parse("Tea".into()).unwrap(),
            quantity: Quantity::parse(1).unwrap(),
            unit_price: None,
            customer: Customer {
                email: EmailAddress::parse("ada@example.com".into()).unwrap(),
                first_name: PersonName::parse("Ada".into()).unwrap(),
                last_name: PersonName::parse("Lovelace".into()).unwrap(),
            },
        };
        Queued {
            placement: OrderPlacement::new(order, String::new(), None, "test".into()),
            reply: oneshot::channel().0,
        }
    }

    async fn sizes_of_groups(committers: &Committers, count: usize) -> Vec<usize> {
        let shutdown = CancellationToken::new();
        let mut sizes = Vec::new();
        while sizes.iter().sum::<usize>() < count {
            sizes.push(committers.next_group(&shutdown).await.unwrap().len());
        }
        sizes
    }

    #[tokio::test]
    async fn a_group_takes_what_is_queued_up_to_its_maximum_size() {
        let (queue, committers) = committers(4, 0, 0);
        for _ in 0..10 {
            queue.send(queued()).await.unwrap();
        }

        assert_eq!(sizes_of_groups(&committers, 10).await, [4, 4, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_waits_for_more_orders_no_longer_than_its_maximum_wait() {
        let (queue, committers) = committers(64, 50, 50);
        queue.send(queued()).await.unwrap();
        let later = queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            later.send(queued()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
            later.send(queued()).await.unwrap();
        });
        let started = Instant::now();

        let sizes = sizes_of_groups(&committers, 3).await;

        // The order sent 30 ms after the first joins its group; the one sent at 70 ms does
        // not (the group closed at 50 ms) and starts the next, closed 50 ms after it.
        assert_eq!(sizes, [2, 1]);
        assert_eq!(started.elapsed(), Duration::from_millis(120));
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_closes_when_no_order_follows_within_its_maximum_gap() {
        let (queue, committers) = committers(64, 50, 10);
        queue.send(queued()).await.unwrap();
        let later = queue.clone();
        tokio::spawn(async move {
            for pause in [8, 8, 12] {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                later.send(queued()).await.unwrap();
            }
        });
        let started = Instant::now();

        let sizes = sizes_of_groups(&committers, 4).await;

        // The orders 8 and 16 ms after the first join its group; the one 12 ms after them
        // does not (the group closed 10 ms after the last order, at 26 ms, well before its
        // 50 ms) and starts the next, which closes 10 ms after it.
        assert_eq!(sizes, [3, 1]);
        assert_eq!(started.elapsed(), Duration::from_millis(38));
    }

    #[tokio::test]
    async fn after_shutdown_what_is_queued_is_still_committed_and_then_the_committers_stop() {
        let (queue, committers) = committers(2, 1000, 1000);
        for _ in 0..3 {
            queue.send(queued()).await.unwrap();
        }
        let shutdown = CancellationToken::new();
        shutdown.cancel();

        let first = committers.next_group(&shutdown).await.map(|g| g.len());
        let second = committers.next_group(&shutdown).await.map(|g| g.len());
        let third = committers.next_group(&shutdown).await.map(|g| g.len());

        assert_eq!((first, second, third), (Some(2), Some(1), None));
    }
}
