//! Event → read model. Applying events is idempotent and tolerates reordering: an order is
//! written only if its stored version is older than the event's, and a customer's summary is
//! replaced only by one of a higher summary version, which every event since `OnNewOrder` v3
//! and `OrderCancelled` v2 carries (see [`ReadStore::write_carried_summaries`]). Events from
//! before carry none; their placement and cancellation each enter the summary at most once
//! (see [`ReadStore::count_orders_for_customer`]) until the first carried summary replaces
//! the counts. A redelivered, duplicated or late event never double-counts or overwrites newer
//! state.
//!
//! Events are applied in batches. [`plan`] is the pure part: it coalesces a batch into the
//! writes it needs, one summary change per customer and one document per order (its newest
//! version: every event carries the whole order). [`Projector`] makes those writes.
//!
//! Summaries are written first and order documents last: once a read sees an order at some
//! version, its customer's summary already reflects that event. Read-your-writes
//! (`http::consistency`) relies on this.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::DateTime;
use shared_events::{CustomerDetails, CustomerSummary, EventEnvelope, OrderEvent, OrderStatus};

use crate::store::{
    reaches_compaction_point, CarriedSummary, CountedOrder, EmbeddedCustomer, OrderDocument,
    PriceDocument, ReadStore, StoreError, SummaryWrite,
};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflected this event (a redelivery or a duplicate).
    AlreadyApplied,
}

/// What one batch of events changes in one customer's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerChange {
    pub email: String,
    /// The highest-version summary the batch's events carry for the customer.
    pub summary: Option<CarriedSummary>,
    /// The lowest summary version the batch's events carry for the customer.
    pub lowest_version: Option<i64>,
    /// From events without a summary: the orders to count as placed, each once. A
    /// cancellation counts its order's placement too: when the `OnNewOrder` is still in the
    /// retry queue, the summary must not show a cancellation without its order.
    pub placed: Vec<CountedOrder>,
    /// From events without a summary: the orders to count as cancelled, each once.
    pub cancelled: Vec<CountedOrder>,
}

/// The writes a batch of events makes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchWrites {
    /// One per customer, in the order the customers first appear in the batch.
    pub customers: Vec<CustomerChange>,
    /// The newest version of each order in the batch, in the order the orders first appear.
    pub orders: Vec<OrderDocument>,
}

impl CustomerChange {
    /// The summary write of the batch's newest carried summary, if it carries one.
    pub fn summary_write(&self) -> Option<SummaryWrite> {
        let summary = self.summary.clone()?;
        let lowest = self.lowest_version.unwrap_or(summary.version);
        Some(SummaryWrite {
            email: self.email.clone(),
            first_version: lowest <= 1,
            compact: reaches_compaction_point(&self.email, lowest, summary.version),
            summary,
        })
    }
}

/// Coalesces `events` into the writes that apply them all.
pub fn plan(events: &[EventEnvelope]) -> BatchWrites {
    let mut customers: Vec<CustomerChange> = Vec::new();
    let mut customer_index: HashMap<&str, usize> = HashMap::new();
    let mut orders: Vec<OrderDocument> = Vec::new();
    let mut order_index: HashMap<String, usize> = HashMap::new();
    for envelope in events {
        let order = order_document(envelope);
        let counted = CountedOrder::of(&order);
        let email = envelope.payload.order().customer.email.as_str();
        let change = *customer_index.entry(email).or_insert_with(|| {
            customers.push(CustomerChange {
                email: email.to_owned(),
                summary: None,
                lowest_version: None,
                placed: Vec::new(),
                cancelled: Vec::new(),
            });
            customers.len() - 1
        });
        let change = &mut customers[change];
        if let Some(carried) = envelope.payload.customer_summary() {
            let carried = carried_summary(carried, &envelope.payload.order().customer);
            change.lowest_version = Some(
                change
                    .lowest_version
                    .map_or(carried.version, |lowest| lowest.min(carried.version)),
            );
            if change
                .summary
                .as_ref()
                .is_none_or(|kept| kept.version < carried.version)
            {
                change.summary = Some(carried);
            }
        } else {
            let is_new =
                |list: &[CountedOrder]| !list.iter().any(|c| c.order_id == counted.order_id);
            if let OrderEvent::OrderCancelled(_) = envelope.payload {
                if is_new(&change.cancelled) {
                    change.cancelled.push(counted.clone());
                }
            }
            if is_new(&change.placed) {
                change.placed.push(counted);
            }
        }
        match order_index.get(&order.id) {
            Some(&index) if orders[index].version >= order.version => {}
            Some(&index) => orders[index] = order,
            None => {
                order_index.insert(order.id.clone(), orders.len());
                orders.push(order);
            }
        }
    }
    BatchWrites { customers, orders }
}

/// Applies order events to the read models.
#[derive(Clone)]
pub struct Projector {
    store: ReadStore,
    /// Writes in flight at once while applying a batch.
    concurrency: usize,
}

impl Projector {
    pub fn new(store: ReadStore, concurrency: usize) -> Self {
        Self {
            store,
            concurrency: concurrency.max(1),
        }
    }

    /// Applies one event.
    pub async fn apply(&self, envelope: &EventEnvelope) -> Result<Outcome, StoreError> {
        let outcomes = self.apply_batch(std::slice::from_ref(envelope)).await?;
        Ok(outcomes.first().copied().unwrap_or(Outcome::AlreadyApplied))
    }

    /// Applies `events` together and tells, for each, whether it changed the order it names.
    /// Different customers' summaries are written concurrently, then the orders. Retrying a
    /// failed batch is safe: every write is idempotent.
    ///
    /// The writes are abandoned, and the batch fails as [`StoreError::TimedOut`], past the
    /// store's batch deadline.
    pub async fn apply_batch(&self, events: &[EventEnvelope]) -> Result<Vec<Outcome>, StoreError> {
        self.store
            .within_batch_deadline(self.write_batch(events))
            .await
    }

    async fn write_batch(&self, events: &[EventEnvelope]) -> Result<Vec<Outcome>, StoreError> {
        let mut steps = StepTimer::start();
        let writes = plan(events);
        // Made up front, not in the stream: a closure there would make this future's `Send`
        // depend on lifetimes the compiler cannot prove for every caller.
        let summary_writes: Vec<_> = writes
            .customers
            .iter()
            .map(|change| self.apply_customer_change(change))
            .collect();
        let inserted: Vec<Option<String>> = futures::stream::iter(summary_writes)
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        steps.lap("counts");
        let summaries: Vec<SummaryWrite> = writes
            .customers
            .iter()
            .filter_map(CustomerChange::summary_write)
            .collect();
        let mut inserted: HashSet<String> = inserted.into_iter().flatten().collect();
        inserted.extend(
            self.store
                .write_carried_summaries(&summaries, self.concurrency)
                .await?,
        );
        steps.lap("summaries");
        // Listed in the order the batch first names them; before the orders, as summaries are.
        let new_customers: Vec<String> = writes
            .customers
            .iter()
            .map(|change| &change.email)
            .filter(|email| inserted.contains(*email))
            .cloned()
            .collect();
        self.store.list_new_customers(&new_customers).await?;
        steps.lap("customer listing");
        let written = self
            .store
            .write_orders(&writes.orders, self.concurrency)
            .await?;
        steps.lap("orders");
        steps.warn_if_slow(events.len());
        let written: HashMap<&str, bool> = writes
            .orders
            .iter()
            .map(|order| order.id.as_str())
            .zip(written)
            .collect();
        // An event is applied if its order was written and it is not a copy of an event
        // earlier in the batch.
        let mut seen = HashSet::new();
        Ok(events
            .iter()
            .map(|envelope| {
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

    /// Counts what events without a summary bring; the carried summaries are written after
    /// (they count every earlier order of the customer's, so they replace what the counting
    /// did). The customer's email when a write inserted its summary.
    async fn apply_customer_change(
        &self,
        change: &CustomerChange,
    ) -> Result<Option<String>, StoreError> {
        let inserted = self
            .store
            .count_orders_for_customer(&change.email, &change.placed)
            .await?;
        for cancelled in &change.cancelled {
            self.store
                .count_cancellation_for_customer(&change.email, cancelled)
                .await?;
        }
        Ok(inserted.then(|| change.email.clone()))
    }
}

/// A batch that takes longer than this to write is logged with the time of each step.
const SLOW_BATCH: Duration = Duration::from_secs(1);

/// The time each step of writing a batch took.
struct StepTimer {
    started: Instant,
    lap_started: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl StepTimer {
    fn start() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            lap_started: now,
            laps: Vec::with_capacity(4),
        }
    }

    fn lap(&mut self, step: &'static str) {
        let now = Instant::now();
        self.laps.push((step, now - self.lap_started));
        self.lap_started = now;
    }

    fn warn_if_slow(&self, events: usize) {
        let took = self.started.elapsed();
        if took >= SLOW_BATCH {
            let steps: Vec<String> = self
                .laps
                .iter()
                .map(|(step, time)| format!("{step} {} ms", time.as_millis()))
                .collect();
            log::warn!(
                "a batch of {events} events took {} ms to write: {}",
                took.as_millis(),
                steps.join(", ")
            );
        }
    }
}

fn bson_time(time: chrono::DateTime<chrono::Utc>) -> DateTime {
    DateTime::from_millis(time.timestamp_millis())
}

/// A count or version of the wire format as BSON stores it (64-bit signed).
fn bson_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The summary an event carries, with the customer's names as of that event.
fn carried_summary(summary: &CustomerSummary, customer: &CustomerDetails) -> CarriedSummary {
    CarriedSummary {
        version: bson_count(summary.version),
        placed_order_count: bson_count(summary.placed_order_count),
        placed_quantity: bson_count(summary.placed_quantity),
        cancelled_order_count: bson_count(summary.cancelled_order_count),
        cancelled_quantity: bson_count(summary.cancelled_quantity),
        last_order_at: bson_time(summary.last_order_at),
        first_name: customer.first_name.clone(),
        last_name: customer.last_name.clone(),
    }
}

fn order_document(envelope: &EventEnvelope) -> OrderDocument {
    let event = &envelope.payload;
    let order = event.order();
    let (status, cancelled_at, cancellation_reason) = match event {
        OrderEvent::OnNewOrder(_) => (OrderStatus::Placed.as_str(), None, None),
        OrderEvent::OrderCancelled(cancelled) => (
            OrderStatus::Cancelled.as_str(),
            Some(bson_time(cancelled.cancelled_at)),
            cancelled.reason.clone(),
        ),
    };
    OrderDocument {
        id: event.order_id().to_string(),
        description: order.description.clone(),
        quantity: i64::from(order.quantity),
        unit_price: order.unit_price.as_ref().map(|price| PriceDocument {
            amount_minor: price.amount_minor,
            currency: price.currency.clone(),
        }),
        status: status.to_owned(),
        customer: EmbeddedCustomer {
            email: order.customer.email.clone(),
            first_name: order.customer.first_name.clone(),
            last_name: order.customer.last_name.clone(),
        },
        customer_email: Some(order.customer.email.clone()),
        created_at: bson_time(order.created_at),
        cancelled_at,
        cancellation_reason,
        version: bson_count(envelope.aggregate_version),
        list_position: None,
        list_page: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use shared_events::fixtures::{cancelled_order_event, new_order_event, with_customer_summary};
    use shared_events::{CustomerSummary, EventId, OrderId};
    use uuid::Uuid;

    use super::*;
    use crate::store::{compaction_offset, SUMMARY_VERSIONS_PER_COMPACTION};

    fn placed(email: &str, quantity: u32, at: DateTime<Utc>) -> EventEnvelope {
        new_order_event(
            OrderId::from_uuid(Uuid::now_v7()),
            EventId::from_uuid(Uuid::now_v7()),
            email,
            quantity,
            at,
        )
    }

    fn cancelled(placed: &EventEnvelope) -> EventEnvelope {
        let order = placed.payload.order();
        cancelled_order_event(
            placed.aggregate_id,
            EventId::from_uuid(Uuid::now_v7()),
            &order.customer.email,
            order.quantity,
            order.created_at,
            order.created_at + Duration::minutes(5),
        )
    }

    fn ids(list: &[CountedOrder]) -> Vec<String> {
        list.iter()
            .map(|counted| counted.order_id.clone())
            .collect()
    }

    #[test]
    fn a_batch_writes_each_customer_once_and_each_order_at_its_newest_version() {
        let now = Utc::now();
        let ada_first = placed("ada@example.com", 2, now);
        let bob = placed("bob@example.com", 1, now);
        let ada_second = placed("ada@example.com", 3, now + Duration::seconds(1));

        let writes = plan(&[
            ada_first.clone(),
            bob.clone(),
            ada_first.clone(),
            ada_second.clone(),
            cancelled(&ada_first),
        ]);

        let emails: Vec<&str> = writes.customers.iter().map(|c| c.email.as_str()).collect();
        assert_eq!(emails, ["ada@example.com", "bob@example.com"]);
        let ada = &writes.customers[0];
        assert_eq!(
            ids(&ada.placed),
            [
                ada_first.aggregate_id.to_string(),
                ada_second.aggregate_id.to_string()
            ]
        );
        assert_eq!(ids(&ada.cancelled), [ada_first.aggregate_id.to_string()]);
        let orders: Vec<(String, i64, &str)> = writes
            .orders
            .iter()
            .map(|o| (o.id.clone(), o.version, o.status.as_str()))
            .collect();
        assert_eq!(
            orders,
            [
                (
                    ada_first.aggregate_id.to_string(),
                    2,
                    OrderStatus::Cancelled.as_str()
                ),
                (
                    bob.aggregate_id.to_string(),
                    1,
                    OrderStatus::Placed.as_str()
                ),
                (
                    ada_second.aggregate_id.to_string(),
                    1,
                    OrderStatus::Placed.as_str()
                ),
            ]
        );
    }

    fn summary(version: u64, placed: u64, cancelled: u64, at: DateTime<Utc>) -> CustomerSummary {
        CustomerSummary {
            version,
            placed_order_count: placed,
            placed_quantity: placed * 2,
            cancelled_order_count: cancelled,
            cancelled_quantity: cancelled * 2,
            last_order_at: at,
        }
    }

    #[test]
    fn a_batch_keeps_the_highest_carried_summary_and_counts_only_events_without_one() {
        let now = Utc::now();
        let first = with_customer_summary(placed("ada@example.com", 2, now), summary(1, 1, 0, now));
        let second = placed("ada@example.com", 2, now + Duration::seconds(1));
        let second = with_customer_summary(second, summary(2, 2, 0, now + Duration::seconds(1)));
        let cancellation = with_customer_summary(cancelled(&first), summary(3, 2, 1, now));
        let from_before = placed("ada@example.com", 5, now - Duration::days(1));

        let writes = plan(&[cancellation, first.clone(), from_before.clone(), second]);

        assert_eq!(writes.customers.len(), 1);
        let ada = &writes.customers[0];
        let kept = ada.summary.as_ref().expect("a carried summary");
        assert_eq!(
            (
                kept.version,
                kept.placed_order_count,
                kept.cancelled_order_count
            ),
            (3, 2, 1)
        );
        assert_eq!(ids(&ada.placed), [from_before.aggregate_id.to_string()]);
        assert!(ada.cancelled.is_empty());
    }

    #[test]
    fn a_customer_s_versions_are_compacted_when_a_batch_reaches_their_compaction_point() {
        let now = Utc::now();
        let email = "ada@example.com";
        let write_of = |versions: &[i64]| {
            let events: Vec<EventEnvelope> = versions
                .iter()
                .map(|&version| {
                    let version = u64::try_from(version).unwrap();
                    with_customer_summary(placed(email, 1, now), summary(version, version, 0, now))
                })
                .collect();
            let write = plan(&events).customers[0].summary_write().unwrap();
            (write.summary.version, write.first_version, write.compact)
        };
        let every = SUMMARY_VERSIONS_PER_COMPACTION;
        // The first compaction point past version 1.
        let point = 2 * every - compaction_offset(email);
        assert_eq!(write_of(&[point - 1]), (point - 1, false, false));
        assert_eq!(write_of(&[point]), (point, false, true));
        assert_eq!(write_of(&[point + 1, point - 1]), (point + 1, false, true));
        assert_eq!(write_of(&[point + 1, point + 2]), (point + 2, false, false));
        assert_eq!(write_of(&[point + every]), (point + every, false, true));
        assert!(plan(&[placed("bob@example.com", 1, now)]).customers[0]
            .summary_write()
            .is_none());
    }

    #[test]
    fn customers_compaction_points_are_spread() {
        let offsets: HashSet<i64> = (0..200)
            .map(|n| compaction_offset(&format!("customer{n}@example.com")))
            .collect();
        assert!(offsets
            .iter()
            .all(|offset| (0..SUMMARY_VERSIONS_PER_COMPACTION).contains(offset)));
        assert_eq!(offsets.len(), SUMMARY_VERSIONS_PER_COMPACTION as usize);
        // Fixed by the email alone: every replica and release must agree, so the hash (FNV-1a
        // of the email's bytes) is pinned.
        assert_eq!(compaction_offset("ada@example.com"), 2);
        assert_eq!(compaction_offset(""), 5);
    }

    #[test]
    fn an_older_version_after_a_newer_one_in_a_batch_does_not_replace_it() {
        let order = placed("ada@example.com", 2, Utc::now());

        let writes = plan(&[cancelled(&order), order.clone()]);

        assert_eq!(writes.orders.len(), 1);
        assert_eq!(writes.orders[0].status, OrderStatus::Cancelled.as_str());
        assert_eq!(
            ids(&writes.customers[0].placed),
            [order.aggregate_id.to_string()]
        );
        assert_eq!(
            ids(&writes.customers[0].cancelled),
            [order.aggregate_id.to_string()]
        );
    }
}
