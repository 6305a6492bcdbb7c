//! Event → read model. Applying an event is idempotent and tolerates reordering: the order is
//! written only if its stored version is older than the event's, and an order's placement and
//! its cancellation each enter the customer's summary at most once (see
//! [`ReadStore::count_order_for_customer`]). A redelivered, duplicated or late event never
//! double-counts or overwrites newer state.
//!
//! Every event carries the whole order, so the summary is updated first and the order
//! document last: once a read sees an order at some version, its customer's summary already
//! reflects that event. Read-your-writes (`http::consistency`) relies on this.

use std::hash::{DefaultHasher, Hash, Hasher};

use mongodb::bson::DateTime;
use shared_events::{EventEnvelope, OrderEvent};

use crate::store::{
    CountedOrder, EmbeddedCustomer, OrderDocument, PriceDocument, ReadStore, StoreError,
};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflected this event (a redelivery or a duplicate).
    AlreadyApplied,
}

pub const STATUS_PLACED: &str = "placed";
pub const STATUS_CANCELLED: &str = "cancelled";

/// Applies order events to the read models.
#[derive(Clone)]
pub struct Projector {
    store: ReadStore,
}

impl Projector {
    pub fn new(store: ReadStore) -> Self {
        Self { store }
    }

    /// Which of `lanes` parallel lanes applies `envelope`. Events of one customer, whose
    /// summary each order event updates, share a lane and are applied one after another;
    /// other customers' proceed in parallel.
    pub fn lane(envelope: &EventEnvelope, lanes: usize) -> usize {
        let mut hasher = DefaultHasher::new();
        envelope.payload.order().customer.email.hash(&mut hasher);
        usize::try_from(hasher.finish() % lanes as u64).unwrap_or(0)
    }

    pub async fn apply(&self, envelope: &EventEnvelope) -> Result<Outcome, StoreError> {
        let order = order_document(envelope);
        let counted = CountedOrder {
            order_id: &order.id,
            email: &order.customer.email,
            first_name: &order.customer.first_name,
            last_name: &order.customer.last_name,
            quantity: order.quantity,
            created_at: order.created_at,
        };
        // The placement is counted for a cancellation too: when the `OnNewOrder` is still
        // in the retry queue, the summary must not show a cancellation without its order.
        self.store.count_order_for_customer(&counted).await?;
        if let OrderEvent::OrderCancelled(_) = envelope.payload {
            self.store.count_cancellation_for_customer(&counted).await?;
        }
        Ok(if self.store.upsert_order(&order).await? {
            Outcome::Applied
        } else {
            Outcome::AlreadyApplied
        })
    }
}

fn bson_time(time: chrono::DateTime<chrono::Utc>) -> DateTime {
    DateTime::from_millis(time.timestamp_millis())
}

fn order_document(envelope: &EventEnvelope) -> OrderDocument {
    let event = &envelope.payload;
    let order = event.order();
    let (status, cancelled_at, cancellation_reason) = match event {
        OrderEvent::OnNewOrder(_) => (STATUS_PLACED, None, None),
        OrderEvent::OrderCancelled(cancelled) => (
            STATUS_CANCELLED,
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
        version: i64::try_from(envelope.aggregate_version).unwrap_or(i64::MAX),
    }
}
