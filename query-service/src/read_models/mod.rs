//! The read models, each a fold of the events: one module per model holds its documents and
//! the rules that turn a batch of events into the writes it implies, pure functions tested
//! without a database. The store (`crate::store`) only executes the writes.
//!
//! Every number a model needs comes with the event: the customer's summary and the order's
//! list positions, given by the command side in the order's own transaction. So the writes of
//! a batch depend on its events alone, never on what is stored or on which replica applies
//! them, and in any order: each write is an insert under a unique key (a duplicate is refused
//! and changes nothing) or an update guarded by the version it brings.
//!
//! - [`orders`]: one document per order, at its newest version, with the customer embedded.
//! - [`customers`]: a document for one version of a customer's summary in a span of orders
//!   (4 or 8, by the server) and for each cancellation, the others in their orders'
//!   documents; reads take the newest.
//! - [`listings`]: which pages of the listings hold anything, for the listings' first page.
//!
//! Every order and customer belongs to an owner (the principal that placed the order, carried
//! by its events); each owner's orders and customers are listed apart, by the positions the
//! events carry for the owner's listings, besides the listings of everything.

pub mod customers;
pub mod listings;
pub mod orders;

use mongodb::bson::DateTime;
use shared_events::{CustomerSummary, EventEnvelope, ListPositions, OwnerPositions};

pub use customers::{
    Compaction, CustomerWrites, SpanLength, Summarised, SummaryDocument, SummaryInOrder,
};
pub use listings::{ListPageMarker, Listing, LIST_PAGE_SPAN};
pub use orders::{EmbeddedCustomer, OrderDocument, OrderWrites, PriceDocument};

/// An event with what the read models derive everything from: its customer's summary and its
/// list positions. Events published before they were carried (`OnNewOrder` before v4,
/// `OrderCancelled` before v3) are numbered by a rebuild, which replays the event log in
/// order (`crate::rebuild::numbering`); the live consumer parks them.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberedEvent {
    pub envelope: EventEnvelope,
    pub summary: CustomerSummary,
    pub positions: ListPositions,
    pub owner_positions: OwnerPositions,
}

/// An event without its summary or list positions.
#[derive(Debug, thiserror::Error)]
#[error(
    "{event_type} v{schema_version} of order {order_id} carries no {missing}: events from \
     before v4 of OnNewOrder and v3 of OrderCancelled are applied by a rebuild \
     (query-service rebuild-read-models), which numbers them in log order"
)]
pub struct Unnumbered {
    pub event_type: String,
    pub schema_version: u32,
    pub order_id: String,
    pub missing: &'static str,
}

impl Unnumbered {
    pub fn reason_code(&self) -> &'static str {
        "unnumbered-event"
    }
}

impl TryFrom<EventEnvelope> for NumberedEvent {
    type Error = Unnumbered;

    fn try_from(envelope: EventEnvelope) -> Result<Self, Unnumbered> {
        let summary = envelope.payload.customer_summary().cloned();
        let positions = envelope.payload.list_positions();
        let owner_positions = envelope.payload.owner_positions();
        match (summary, positions, owner_positions) {
            (Some(summary), Some(positions), Some(owner_positions)) => Ok(Self {
                envelope,
                summary,
                positions,
                owner_positions,
            }),
            (summary, _, _) => Err(Unnumbered {
                event_type: envelope.event_type.clone(),
                schema_version: envelope.schema_version,
                order_id: envelope.aggregate_id.to_string(),
                missing: if summary.is_none() {
                    "customer summary"
                } else {
                    "list positions"
                },
            }),
        }
    }
}

/// Every write a batch of events implies, in the order the store makes them: summaries and
/// page markers before the orders, so that a read that sees an order at some version finds
/// its customer's summary and its page at least as new (read-your-writes relies on it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Writes {
    pub customers: CustomerWrites,
    pub list_pages: Vec<ListPageMarker>,
    pub orders: OrderWrites,
}

/// The writes that apply `batch`, whatever was applied before, to read models whose
/// customers' orders fall in spans of `length`.
pub fn writes(batch: &[NumberedEvent], length: SpanLength) -> Writes {
    Writes {
        customers: customers::writes(batch, length),
        list_pages: listings::writes(batch),
        orders: orders::writes(batch, length),
    }
}

/// One text naming `parts` and nothing else: joined by `/`, with `%` and `/` in each part
/// written `%25` and `%2F`, so that no two lists of parts give one key (an owner and an email
/// may both hold a `/`).
pub fn key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| part.replace('%', "%25").replace('/', "%2F"))
        .collect::<Vec<_>>()
        .join("/")
}

fn bson_time(time: chrono::DateTime<chrono::Utc>) -> DateTime {
    DateTime::from_millis(time.timestamp_millis())
}

/// A count, version or position of the wire format as BSON stores it (64-bit signed).
fn bson_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use shared_events::fixtures::{cancellation_of, new_order_event};
    use shared_events::{EventId, OrderId};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_key_tells_its_parts_apart_whatever_they_hold() {
        assert_eq!(
            key(&["alice", "ada@example.com", "3"]),
            "alice/ada@example.com/3"
        );
        assert_eq!(key(&["", "ada@example.com"]), "/ada@example.com");
        assert_ne!(key(&["a/b", "c"]), key(&["a", "b/c"]));
        assert_ne!(key(&["a%2Fb", "c"]), key(&["a/b", "c"]));
    }

    /// A numbered `OnNewOrder` of the anonymous owner: the order at list position `position`,
    /// its customer's first (customer 1, summary version 1).
    pub fn placed(email: &str, quantity: u32, position: u64) -> NumberedEvent {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        NumberedEvent {
            envelope: new_order_event(
                OrderId::from_uuid(Uuid::now_v7()),
                EventId::from_uuid(Uuid::now_v7()),
                email,
                quantity,
                at,
            ),
            summary: CustomerSummary {
                version: 1,
                placed_order_count: 1,
                placed_quantity: u64::from(quantity),
                cancelled_order_count: 0,
                cancelled_quantity: 0,
                last_order_at: at,
            },
            positions: ListPositions {
                order: position,
                customer: 1,
                customer_order: 1,
            },
            owner_positions: OwnerPositions {
                order: position,
                customer: 1,
            },
        }
    }

    /// `event` placed by `owner`, at `positions` in its listings.
    pub fn owned_by(
        mut event: NumberedEvent,
        owner: &str,
        positions: OwnerPositions,
    ) -> NumberedEvent {
        match &mut event.envelope.payload {
            shared_events::OrderEvent::OnNewOrder(placed) => placed.owner = owner.to_owned(),
            shared_events::OrderEvent::OrderCancelled(cancelled) => {
                cancelled.owner = owner.to_owned()
            }
        }
        event.owner_positions = positions;
        event
    }

    /// The numbered cancellation of `placed`: its next version, with the cancellation counted.
    pub fn cancelled(placed: &NumberedEvent) -> NumberedEvent {
        let order = placed.envelope.payload.order();
        let mut summary = placed.summary.clone();
        summary.version += 1;
        summary.cancelled_order_count += 1;
        summary.cancelled_quantity += u64::from(order.quantity);
        NumberedEvent {
            envelope: cancellation_of(
                &placed.envelope,
                EventId::from_uuid(Uuid::now_v7()),
                order.created_at + Duration::minutes(5),
            ),
            summary,
            positions: placed.positions,
            owner_positions: placed.owner_positions,
        }
    }

    /// `event` carrying summary `version` with (orders, quantity) placed and cancelled.
    pub fn with_summary(
        mut event: NumberedEvent,
        version: u64,
        placed: (u64, u64),
        cancelled: (u64, u64),
    ) -> NumberedEvent {
        event.summary = CustomerSummary {
            version,
            placed_order_count: placed.0,
            placed_quantity: placed.1,
            cancelled_order_count: cancelled.0,
            cancelled_quantity: cancelled.1,
            last_order_at: event.summary.last_order_at,
        };
        event
    }
}
