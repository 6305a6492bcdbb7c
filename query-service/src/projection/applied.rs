//! What this replica's projection applied, told to the reads waiting for it: a read with a
//! consistency token is woken by the batch that wrote its order's version instead of polling
//! the store. Only this replica's batches are seen here; a token another replica applies is
//! found by the waiting read's fallback poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The registry of waiting reads, shared by the projector (which tells) and the HTTP layer
/// (which waits); cheap to clone.
#[derive(Debug, Clone)]
pub struct AppliedVersions {
    inner: Arc<Mutex<Waiting>>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Waiting {
    next_id: u64,
    count: usize,
    by_order: HashMap<String, Vec<Waiter>>,
}

impl Waiting {
    /// Takes out the waiters of `order_id` that `picked` chooses.
    fn take(&mut self, order_id: &str, picked: impl Fn(&Waiter) -> bool) -> Vec<Waiter> {
        let Some(waiters) = self.by_order.get_mut(order_id) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(waiters)
            .into_iter()
            .partition(|waiter| picked(waiter));
        if kept.is_empty() {
            self.by_order.remove(order_id);
        } else {
            *waiters = kept;
        }
        self.count -= taken.len();
        taken
    }
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    version: i64,
    wake: oneshot::Sender<()>,
}

/// Every slot for a waiting read is taken.
#[derive(Debug, thiserror::Error)]
#[error("{0} reads already wait for the read model on this replica")]
pub struct TooManyWaiting(pub usize);

impl AppliedVersions {
    /// At most `capacity` reads may wait at once; a made-up token cannot hold more.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity,
        }
    }

    /// Registers a read that waits for order `order_id` at `version` or later. Register before
    /// checking the store, so that a batch written between the check and the wait still wakes
    /// it.
    pub fn wait_for(&self, order_id: &str, version: i64) -> Result<Awaited, TooManyWaiting> {
        let (wake, woken) = oneshot::channel();
        let mut waiting = self.lock();
        if waiting.count >= self.capacity {
            return Err(TooManyWaiting(self.capacity));
        }
        waiting.next_id += 1;
        let id = waiting.next_id;
        waiting.count += 1;
        waiting
            .by_order
            .entry(order_id.to_owned())
            .or_default()
            .push(Waiter { id, version, wake });
        Ok(Awaited {
            registry: self.clone(),
            order_id: order_id.to_owned(),
            id,
            woken,
        })
    }

    /// Wakes the reads waiting for these orders at these versions or earlier: each is in the
    /// read model at that version or a newer one.
    pub fn applied<'a>(&self, orders: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut waiting = self.lock();
        if waiting.count == 0 {
            return;
        }
        for (order_id, version) in orders {
            for waiter in waiting.take(order_id, |waiter| waiter.version <= version) {
                // The read may have given up meanwhile; nobody to tell then.
                let _ = waiter.wake.send(());
            }
        }
    }

    /// Reads waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().count
    }

    fn forget(&self, order_id: &str, id: u64) {
        self.lock().take(order_id, |waiter| waiter.id == id);
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered wait; dropping it gives its slot back.
#[derive(Debug)]
pub struct Awaited {
    registry: AppliedVersions,
    order_id: String,
    id: u64,
    woken: oneshot::Receiver<()>,
}

impl Awaited {
    /// Resolves once this replica applied the awaited version (or a newer one).
    pub async fn applied(&mut self) {
        if (&mut self.woken).await.is_err() {
            // The sender is gone only with the registry's entry, which `applied` removes after
            // sending: not reached while the wait is registered.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        self.registry.forget(&self.order_id, self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn resolves(awaited: &mut Awaited) -> bool {
        tokio::time::timeout(Duration::from_millis(50), awaited.applied())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_read_is_woken_by_its_version_or_a_newer_one_not_by_an_older_one() {
        let applied = AppliedVersions::new(10);
        let mut second = applied.wait_for("a", 2).unwrap();
        let mut first = applied.wait_for("a", 1).unwrap();

        applied.applied([("a", 1), ("b", 5)]);
        assert!(resolves(&mut first).await);
        assert!(!resolves(&mut second).await);

        applied.applied([("a", 3)]);
        assert!(resolves(&mut second).await);
        assert_eq!(applied.waiting(), 0);
    }

    #[tokio::test]
    async fn the_waiting_reads_are_bounded_and_a_finished_one_gives_its_slot_back() {
        let applied = AppliedVersions::new(2);
        let first = applied.wait_for("a", 1).unwrap();
        let _second = applied.wait_for("b", 1).unwrap();

        assert!(applied.wait_for("c", 1).is_err());
        drop(first);
        assert_eq!(applied.waiting(), 1);
        assert!(applied.wait_for("c", 1).is_ok());
    }
}
