//! Event → read model. Applying an event is idempotent: the order is written only if its
//! stored version is older than the event's, and an order is added to its customer's summary
//! only if the summary does not list it yet (see [`ReadStore::count_order_for_customer`]).
//! A redelivered, duplicated or late event never double-counts or overwrites newer state.

use mongodb::bson::DateTime;
use shared_events::{EventEnvelope, OnNewOrder, OrderEvent};

use crate::store::{CountedOrder, EmbeddedCustomer, OrderDocument, ReadStore, StoreError};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflected this event (a redelivery or a duplicate).
    AlreadyApplied,
}

/// Status of an order that has been placed and not changed since.
pub const STATUS_PLACED: &str = "placed";

/// Applies order events to the read models.
#[derive(Clone)]
pub struct Projector {
    store: ReadStore,
}

impl Projector {
    pub fn new(store: ReadStore) -> Self {
        Self { store }
    }

    /// Events with the same key must be applied one after another; others may run in
    /// parallel. The key is the customer, whose summary each order event updates.
    pub fn ordering_key(envelope: &EventEnvelope) -> &str {
        match &envelope.payload {
            OrderEvent::OnNewOrder(event) => &event.customer.email,
        }
    }

    pub async fn apply(&self, envelope: &EventEnvelope) -> Result<Outcome, StoreError> {
        match &envelope.payload {
            OrderEvent::OnNewOrder(event) => {
                let order = placed_order(event, envelope.aggregate_version);
                let written = self.store.upsert_order(&order).await?;
                // Always counted, even when the order was already written: after a crash
                // between the two writes, the redelivery must still complete the summary.
                self.store
                    .count_order_for_customer(&CountedOrder {
                        order_id: &order.id,
                        email: &order.customer.email,
                        first_name: &order.customer.first_name,
                        last_name: &order.customer.last_name,
                        quantity: order.quantity,
                        created_at: order.created_at,
                    })
                    .await?;
                Ok(if written {
                    Outcome::Applied
                } else {
                    Outcome::AlreadyApplied
                })
            }
        }
    }
}

fn placed_order(event: &OnNewOrder, version: u64) -> OrderDocument {
    OrderDocument {
        id: event.order_id.to_string(),
        description: event.description.clone(),
        quantity: i64::from(event.quantity),
        status: STATUS_PLACED.to_owned(),
        customer: EmbeddedCustomer {
            email: event.customer.email.clone(),
            first_name: event.customer.first_name.clone(),
            last_name: event.customer.last_name.clone(),
        },
        created_at: DateTime::from_millis(event.created_at.timestamp_millis()),
        version: i64::try_from(version).unwrap_or(i64::MAX),
    }
}
