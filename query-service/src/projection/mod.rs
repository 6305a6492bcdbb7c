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
use crate::store::{PendingCompactions, ReadStore, StoreError};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflected this event (a redelivery or a duplicate).
    AlreadyApplied,
}

/// What applying a batch did.
#[derive(Debug)]
pub struct AppliedBatch {
    /// For each event of the batch, in order.
    pub outcomes: Vec<Outcome>,
    /// Left for [`Projector::compact`], once the batch is acknowledged.
    pub compactions: PendingCompactions,
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
    /// The batch's compactions are left out: they change no answer, so they wait for
    /// [`Projector::compact`] instead of holding the batch.
    ///
    /// The writes are abandoned, and the batch fails as [`StoreError::TimedOut`], past the
    /// store's batch deadline.
    pub async fn apply_batch(&self, events: &[NumberedEvent]) -> Result<AppliedBatch, StoreError> {
        let started = Instant::now();
        let writes = read_models::writes(events, self.store.span_length().await?);
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
        let changed: HashMap<&str, bool> = orders()
            .map(|order| order.id.as_str())
            .zip(written.orders)
            .collect();
        // An event is applied if its order was written and it is not a copy of an event
        // earlier in the batch.
        let mut seen = HashSet::new();
        let outcomes = events
            .iter()
            .map(|event| {
                let envelope = &event.envelope;
                let id = envelope.aggregate_id.to_string();
                let first_copy = seen.insert((envelope.aggregate_id, envelope.aggregate_version));
                if first_copy && changed.get(id.as_str()).copied().unwrap_or(false) {
                    Outcome::Applied
                } else {
                    Outcome::AlreadyApplied
                }
            })
            .collect();
        Ok(AppliedBatch {
            outcomes,
            compactions: written.compactions,
        })
    }

    /// Deletes the customers' summary versions that an applied batch superseded at their
    /// compaction points. A compaction that fails is not retried: it leaves those customers'
    /// older versions, which reads pass over, until their next compaction point deletes every
    /// version below it.
    pub async fn compact(&self, compactions: &PendingCompactions) {
        if let Err(error) = self.store.compact(compactions).await {
            log::warn!(
                "cannot delete older summary versions ({error}); their next compaction will"
            );
        }
    }
}

/// A batch that takes longer than this to write is logged.
const SLOW_BATCH: Duration = Duration::from_secs(1);
