//! The orders read model: one document per order in `orders`, at the newest version its
//! events brought, with the customer embedded as reads return it, and the customer's summary
//! as of that version (most of a customer's summary versions are stored only here, see
//! `super::customers`).
//!
//! A first version is inserted: the unique `_id` refuses a second copy, so a redelivery
//! changes nothing. A later version (a cancellation) replaces the document only where the
//! stored version is older (`{_id, version: {$lt: v}}`, upserted), so an event applied late
//! never brings an order back; it inserts the whole order when it is the first of the order's
//! events to arrive, which is why every event carries the whole order.

use std::collections::HashMap;

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use shared_events::{OrderEvent, OrderStatus, FIRST_AGGREGATE_VERSION};

use super::customers::{self, customer_key, span_key, SpanLength, Spans, Summary};
use super::listings::page_of;
use super::{bson_count, bson_time, key, NumberedEvent};

/// An order as stored in the `orders` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDocument {
    #[serde(rename = "_id")]
    pub id: String,
    /// The principal that placed the order; `""` is the anonymous one.
    pub owner: String,
    pub description: String,
    pub quantity: i64,
    /// `None` for an order placed without a price (the price is optional).
    pub unit_price: Option<PriceDocument>,
    /// `placed` or `cancelled`.
    pub status: String,
    pub customer: EmbeddedCustomer,
    /// `customer.email` again, at the top level: FerretDB filters a top-level field through
    /// its index but scans the collection for a nested one.
    pub customer_email: String,
    pub created_at: DateTime,
    pub cancelled_at: Option<DateTime>,
    pub cancellation_reason: Option<String>,
    /// The order's aggregate version: the number of its events applied.
    pub version: i64,
    /// The order's place among all orders, from its events.
    pub list_position: i64,
    /// The page of `list_position` ([`page_of`]): the newest-first listing reads a page by
    /// equality on it, the one kind of filter every store serves from an index.
    pub list_page: i64,
    /// The order's place among its customer's orders, from 1.
    pub customer_order: i64,
    /// [`customer_page`] of the order's customer and the page of `customer_order`: a
    /// customer's orders are read a page at a time by equality on it.
    pub customer_page: String,
    /// The order's place among its owner's orders.
    pub owner_position: i64,
    /// [`owner_page`] of the owner and the page of `owner_position`: the owner's listing reads
    /// a page by equality on it.
    pub owner_list_page: String,
    /// The customer's summary as of this version of the order ([`super::customers`]).
    pub customer_summary: Summary,
    /// [`span_key`] of the customer and the span of `customer_order`: a customer's summary is
    /// completed from the orders after their newest summary document by equality on it.
    pub customer_span: String,
    /// The customer's place in the listing of customers.
    pub customer_position: i64,
    /// The customer's place among the owner's customers.
    pub owner_customer_position: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceDocument {
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedCustomer {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// The writes of a batch to `orders`: the newest version of each of its orders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderWrites {
    /// First versions, inserted together (unordered; a duplicate is refused alone).
    pub inserts: Vec<OrderDocument>,
    /// Later versions, each upserted where the stored version is older.
    pub replacements: Vec<OrderDocument>,
}

/// The key of page `page` of the orders of `owner`'s customer `email`.
pub fn customer_page(owner: &str, email: &str, page: i64) -> String {
    key(&[owner, email, &page.to_string()])
}

/// The key of page `page` of `owner`'s listing (of orders, or of customers).
pub fn owner_page(owner: &str, page: i64) -> String {
    key(&[owner, &page.to_string()])
}

/// The newest version of each order of `batch`, in the order the batch first names them, its
/// customer's orders in spans of `length`.
pub fn writes(batch: &[NumberedEvent], length: SpanLength) -> OrderWrites {
    let mut newest: Vec<OrderDocument> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for event in batch {
        let document = document(event, length);
        match index.get(&document.id) {
            Some(&at) if newest[at].version >= document.version => {}
            Some(&at) => newest[at] = document,
            None => {
                index.insert(document.id.clone(), newest.len());
                newest.push(document);
            }
        }
    }
    let first = i64::try_from(FIRST_AGGREGATE_VERSION).unwrap_or(1);
    let (inserts, replacements) = newest.into_iter().partition(|order| order.version == first);
    OrderWrites {
        inserts,
        replacements,
    }
}

/// The order as of `event`, its customer's orders in spans of `length`.
pub fn document(event: &NumberedEvent, length: SpanLength) -> OrderDocument {
    let envelope = &event.envelope;
    let order = envelope.payload.order();
    let (status, cancelled_at, cancellation_reason) = match &envelope.payload {
        OrderEvent::OnNewOrder(_) => (OrderStatus::Placed, None, None),
        OrderEvent::OrderCancelled(cancelled) => (
            OrderStatus::Cancelled,
            Some(bson_time(cancelled.cancelled_at)),
            cancelled.reason.clone(),
        ),
    };
    let owner = envelope.payload.owner();
    let list_position = bson_count(event.positions.order);
    let customer_order = bson_count(event.positions.customer_order);
    let owner_position = bson_count(event.owner_positions.order);
    OrderDocument {
        id: envelope.aggregate_id.to_string(),
        owner: owner.to_owned(),
        description: order.description.clone(),
        quantity: i64::from(order.quantity),
        unit_price: order.unit_price.as_ref().map(|price| PriceDocument {
            amount_minor: price.amount_minor,
            currency: price.currency.clone(),
        }),
        status: status.as_str().to_owned(),
        customer: EmbeddedCustomer {
            email: order.customer.email.clone(),
            first_name: order.customer.first_name.clone(),
            last_name: order.customer.last_name.clone(),
        },
        customer_email: order.customer.email.clone(),
        created_at: bson_time(order.created_at),
        cancelled_at,
        cancellation_reason,
        version: bson_count(envelope.aggregate_version),
        list_position,
        list_page: page_of(list_position),
        customer_order,
        customer_page: customer_page(owner, &order.customer.email, page_of(customer_order)),
        owner_position,
        owner_list_page: owner_page(owner, page_of(owner_position)),
        customer_summary: customers::summary(event),
        customer_span: {
            let customer_key = customer_key(owner, &order.customer.email);
            let span = Spans::of(&customer_key, length).span_of(customer_order);
            span_key(&customer_key, span)
        },
        customer_position: bson_count(event.positions.customer),
        owner_customer_position: bson_count(event.owner_positions.customer),
    }
}

#[cfg(test)]
mod tests {
    use shared_events::OwnerPositions;

    use super::*;
    use crate::read_models::tests::{cancelled, owned_by, placed};

    #[test]
    fn each_order_is_written_once_at_its_newest_version_firsts_inserted_later_replaced() {
        let ada = placed("ada@example.com", 2, 1);
        let bob = placed("bob@example.com", 1, 2);
        let ada_cancelled = cancelled(&ada);

        let writes = writes(
            &[ada.clone(), bob.clone(), ada.clone(), ada_cancelled.clone()],
            SpanLength::SHORT,
        );

        let ids = |documents: &[OrderDocument]| -> Vec<(String, i64, String)> {
            documents
                .iter()
                .map(|d| (d.id.clone(), d.version, d.status.clone()))
                .collect()
        };
        assert_eq!(
            ids(&writes.inserts),
            [(
                bob.envelope.aggregate_id.to_string(),
                1,
                "placed".to_owned()
            )]
        );
        assert_eq!(
            ids(&writes.replacements),
            [(
                ada.envelope.aggregate_id.to_string(),
                2,
                "cancelled".to_owned()
            )]
        );
    }

    #[test]
    fn an_older_version_after_a_newer_one_does_not_replace_it() {
        let ada = placed("ada@example.com", 2, 1);

        let writes = writes(&[cancelled(&ada), ada.clone()], SpanLength::SHORT);

        assert!(writes.inserts.is_empty());
        assert_eq!(writes.replacements.len(), 1);
        assert_eq!(writes.replacements[0].status, "cancelled");
    }

    #[test]
    fn an_order_s_pages_come_from_its_positions() {
        let order = placed("ada@example.com", 2, 130);

        let document = document(&order, SpanLength::SHORT);

        assert_eq!((document.list_position, document.list_page), (130, 2));
        assert_eq!(document.customer_order, 1);
        assert_eq!(document.customer_page, "/ada@example.com/0");
        assert_eq!(document.customer_span, "/ada@example.com/0");
        assert_eq!(document.customer_summary.version, 1);
        assert_eq!(document.customer_email, "ada@example.com");
        assert_eq!(document.owner, "");
        assert_eq!(document.owner_list_page, "/2");
    }

    #[test]
    fn an_owner_s_order_is_on_its_owner_s_pages() {
        let order = owned_by(
            placed("ada@example.com", 2, 130),
            "shop/a",
            OwnerPositions {
                order: 70,
                customer: 3,
            },
        );

        let document = document(&order, SpanLength::SHORT);

        assert_eq!(document.owner, "shop/a");
        assert_eq!(document.owner_position, 70);
        assert_eq!(document.owner_list_page, "shop%2Fa/1");
        assert_eq!(document.customer_page, "shop%2Fa/ada@example.com/0");
        assert_eq!(document.customer_span, "shop%2Fa/ada@example.com/0");
        assert_eq!(document.owner_customer_position, 3);
        assert_eq!(document.list_page, 2, "and on the listing of everything");
    }
}
