//! Applies batches of events to the read models: the read models' fold rules decide the
//! writes (`crate::read_models::writes`), the store makes them. Applying is idempotent and
//! does not depend on the order in which events arrive or which replica applies them, so a
//! redelivered, duplicated or late event never double-counts or overwrites newer state, and
//! a failed batch can simply be retried.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

mod applied;

pub use applied::{AppliedVersions, TooManyWaiting};

use crate::read_models::{self, NumberedEvent};
use crate::store::{ReadStore, StoreError};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflected this event (a redelivery or a duplicate).
    AlreadyApplied,
}

/// Applies order events to the read models.
#[derive(Clone)]
pub struct Projector {
    store: ReadStore,
    /// Writes in flight at once while applying a batch.
    concurrency: usize,
    /// Told each order version a batch wrote.
    applied: AppliedVersions,
}

impl Projector {
    pub fn new(store: ReadStore, concurrency: usize, applied: AppliedVersions) -> Self {
        Self {
            store,
            concurrency: concurrency.max(1),
            applied,
        }
    }

    /// Applies `events` together and tells, for each, whether it changed the order it names.
    ///
    /// The writes are abandoned, and the batch fails as [`StoreError::TimedOut`], past the
    /// store's batch deadline.
    pub async fn apply_batch(&self, events: &[NumberedEvent]) -> Result<Vec<Outcome>, StoreError> {
        let started = Instant::now();
        let writes = read_models::writes(events);
        let written = self
            .store
            .within_batch_deadline(self.store.write(&writes, self.concurrency))
            .await?;
        let took = started.elapsed();
        if took >= SLOW_BATCH {
            log::warn!(
                "a batch of {} events took {} ms to write",
                events.len(),
                took.as_millis()
            );
        }
        let orders = || {
            writes
                .orders
                .inserts
                .iter()
                .chain(&writes.orders.replacements)
        };
        // A write refused as a duplicate found the order at that version or a newer one.
        self.applied
            .applied(orders().map(|order| (order.id.as_str(), order.version)));
        let written: HashMap<&str, bool> = orders()
            .map(|order| order.id.as_str())
            .zip(written)
            .collect();
        // An event is applied if its order was written and it is not a copy of an event
        // earlier in the batch.
        let mut seen = HashSet::new();
        Ok(events
            .iter()
            .map(|event| {
                let envelope = &event.envelope;
                let id = envelope.aggregate_id.to_string();
                let first_copy = seen.insert((envelope.aggregate_id, envelope.aggregate_version));
                if first_copy && written.get(id.as_str()).copied().unwrap_or(false) {
                    Outcome::Applied
                } else {
                    Outcome::AlreadyApplied
                }
            })
            .collect())
    }
}

/// A batch that takes longer than this to write is logged.
const SLOW_BATCH: Duration = Duration::from_secs(1);
