//! Numbering the events of the log published before events carried what the read models
//! derive everything from: `OnNewOrder` before v4 and `OrderCancelled` before v3 lack their
//! list positions, and before v3 and v2 their customer's summary too. Replaying the log in
//! order, a rebuild gives them exactly what the command side's migration gave their orders
//! (`2026-12-02-000007_list_positions`): orders numbered in the order of their `OnNewOrder`,
//! customers in the order of their first one, each customer's orders from 1, and each
//! customer's summary counted one version per placement and cancellation, from the newest
//! summary an event carried. Those orders are the anonymous owner's (as the events' upcasts
//! say), so their positions in its listings are their list positions. Events that carry all
//! of it pass through untouched, and cost no memory.

use std::collections::HashMap;

use chrono::DateTime;
use shared_events::{
    CustomerSummary, EventEnvelope, ListPositions, OrderEvent, OrderId, OwnerPositions,
};

use crate::read_models::NumberedEvent;

/// A cancellation of an order whose placement the log does not hold before it.
#[derive(Debug, thiserror::Error)]
#[error("order {0} is cancelled before the log places it")]
pub struct CancelledBeforePlaced(pub OrderId);

/// What numbering the log so far has given out.
#[derive(Debug, Default)]
pub struct LogNumbering {
    last_order: u64,
    last_customer: u64,
    customers: HashMap<String, CustomerSoFar>,
    orders: HashMap<OrderId, ListPositions>,
}

#[derive(Debug)]
struct CustomerSoFar {
    position: u64,
    placed: u64,
    summary: Option<CustomerSummary>,
}

impl LogNumbering {
    /// `envelope`, the next event of the log, with its summary and list positions.
    pub fn number(
        &mut self,
        envelope: EventEnvelope,
    ) -> Result<NumberedEvent, CancelledBeforePlaced> {
        let carried_summary = envelope.payload.customer_summary().cloned();
        let carried_positions = envelope.payload.list_positions();
        if let (Some(summary), Some(positions), Some(owner_positions)) = (
            carried_summary.clone(),
            carried_positions,
            envelope.payload.owner_positions(),
        ) {
            return Ok(NumberedEvent {
                envelope,
                summary,
                positions,
                owner_positions,
            });
        }
        let order_id = envelope.payload.order_id();
        let order = envelope.payload.order();
        let placement = matches!(envelope.payload, OrderEvent::OnNewOrder(_));
        let positions = match carried_positions {
            Some(positions) => positions,
            None if placement => {
                self.last_order += 1;
                let order_position = self.last_order;
                let customer = self.customer(&order.customer.email);
                customer.placed += 1;
                let positions = ListPositions {
                    order: order_position,
                    customer: customer.position,
                    customer_order: customer.placed,
                };
                self.orders.insert(order_id, positions);
                positions
            }
            None => *self
                .orders
                .get(&order_id)
                .ok_or(CancelledBeforePlaced(order_id))?,
        };
        let customer = self.customer(&order.customer.email);
        let summary = carried_summary.unwrap_or_else(|| {
            let mut summary = customer.summary.clone().unwrap_or(CustomerSummary {
                version: 0,
                placed_order_count: 0,
                placed_quantity: 0,
                cancelled_order_count: 0,
                cancelled_quantity: 0,
                last_order_at: DateTime::UNIX_EPOCH,
            });
            summary.version += 1;
            if placement {
                summary.placed_order_count += 1;
                summary.placed_quantity += u64::from(order.quantity);
                summary.last_order_at = summary.last_order_at.max(order.created_at);
            } else {
                summary.cancelled_order_count += 1;
                summary.cancelled_quantity += u64::from(order.quantity);
            }
            summary
        });
        customer.summary = Some(summary.clone());
        Ok(NumberedEvent {
            envelope,
            summary,
            positions,
            owner_positions: OwnerPositions {
                order: positions.order,
                customer: positions.customer,
            },
        })
    }

    /// The customer `email`, given the next customer position if new.
    fn customer(&mut self, email: &str) -> &mut CustomerSoFar {
        let last_customer = &mut self.last_customer;
        self.customers.entry(email.to_owned()).or_insert_with(|| {
            *last_customer += 1;
            CustomerSoFar {
                position: *last_customer,
                placed: 0,
                summary: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use shared_events::fixtures::{
        cancellation_of, new_order_event, on_new_order_v5, with_customer_summary,
    };
    use shared_events::EventId;
    use uuid::Uuid;

    use super::*;

    fn placed(email: &str, quantity: u32) -> EventEnvelope {
        new_order_event(
            OrderId::from_uuid(Uuid::now_v7()),
            EventId::from_uuid(Uuid::now_v7()),
            email,
            quantity,
            Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        )
    }

    fn cancelled(placed: &EventEnvelope) -> EventEnvelope {
        cancellation_of(
            placed,
            EventId::from_uuid(Uuid::now_v7()),
            placed.payload.order().created_at + Duration::hours(1),
        )
    }

    fn numbers(event: &NumberedEvent) -> (u64, u64, u64, u64, u64, u64) {
        (
            event.positions.order,
            event.positions.customer,
            event.positions.customer_order,
            event.summary.version,
            event.summary.placed_order_count,
            event.summary.cancelled_order_count,
        )
    }

    #[test]
    fn old_events_are_numbered_in_log_order_as_the_command_side_numbered_their_orders() {
        let mut numbering = LogNumbering::default();
        let ada_first = placed("ada@example.com", 2);
        let bob = placed("bob@example.com", 1);
        let ada_second = placed("ada@example.com", 3);

        let numbered: Vec<NumberedEvent> =
            [ada_first.clone(), bob, cancelled(&ada_first), ada_second]
                .into_iter()
                .map(|event| numbering.number(event).unwrap())
                .collect();

        let found: Vec<_> = numbered.iter().map(numbers).collect();
        assert_eq!(
            found,
            [
                (1, 1, 1, 1, 1, 0),
                (2, 2, 1, 1, 1, 0),
                (1, 1, 1, 2, 1, 1),
                (3, 1, 2, 3, 2, 1),
            ]
        );
        assert_eq!(numbered[3].summary.placed_quantity, 5);
        assert_eq!(numbered[3].summary.cancelled_quantity, 2);
    }

    #[test]
    fn a_carried_summary_is_kept_and_the_next_derived_one_counts_from_it() {
        let mut numbering = LogNumbering::default();
        let first = placed("ada@example.com", 2);
        let carried = CustomerSummary {
            version: 7,
            placed_order_count: 5,
            placed_quantity: 11,
            cancelled_order_count: 2,
            cancelled_quantity: 3,
            last_order_at: first.payload.order().created_at,
        };
        let first = numbering
            .number(with_customer_summary(first, carried.clone()))
            .unwrap();
        let second = numbering.number(placed("ada@example.com", 1)).unwrap();

        assert_eq!(first.summary, carried);
        assert_eq!(numbers(&second), (2, 1, 2, 8, 6, 2));
    }

    #[test]
    fn an_event_that_carries_everything_passes_through() {
        let mut numbering = LogNumbering::default();
        let event = on_new_order_v5();

        let numbered = numbering.number(event.clone()).unwrap();

        assert_eq!(numbered.envelope, event);
        assert_eq!(Some(numbered.positions), event.payload.list_positions());
        assert_eq!(
            Some(numbered.owner_positions),
            event.payload.owner_positions()
        );
        assert!(numbering.customers.is_empty() && numbering.orders.is_empty());
    }

    #[test]
    fn a_cancellation_of_an_order_never_placed_is_an_error() {
        let order = placed("ada@example.com", 2);

        let error = LogNumbering::default()
            .number(cancelled(&order))
            .unwrap_err();

        assert_eq!(error.0, order.aggregate_id);
    }
}
