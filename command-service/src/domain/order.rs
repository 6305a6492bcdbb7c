use chrono::{DateTime, Utc};
pub use shared_events::OrderStatus;
use shared_events::{
    CustomerDetails, CustomerSummary, EventEnvelope, EventMetadata, ListPositions, Money,
    OnNewOrder, OrderCancelled, OrderDetails, OrderEvent, OrderId, OwnerPositions,
    FIRST_AGGREGATE_VERSION,
};

use super::{
    CancellationReason, CurrencyCode, Description, EmailAddress, MinorUnits, PersonName, Quantity,
};

/// The customer as named on a command; the email identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
}

/// The price of one unit of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPrice {
    pub amount: MinorUnits,
    pub currency: CurrencyCode,
}

/// A valid request to place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub description: Description,
    pub quantity: Quantity,
    /// Optional, so that clients of the original API, which sends no price, keep working.
    pub unit_price: Option<UnitPrice>,
    pub customer: Customer,
}

/// An order that has been given its identity, owner and time; what the store persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub id: OrderId,
    /// The principal that placed it (`Principal::scope_name`).
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub order: NewOrder,
}

impl NewOrder {
    /// The request in canonical form: a retry with the same idempotency key must match it.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "description": self.description.as_str(),
            "quantity": self.quantity.get(),
            "unitPriceMinor": self.unit_price.as_ref().map(|price| price.amount.get()),
            "currency": self.unit_price.as_ref().map(|price| price.currency.as_str()),
            "email": self.customer.email.as_str(),
            "firstName": self.customer.first_name.as_str(),
            "lastName": self.customer.last_name.as_str(),
        })
    }

    pub fn place(self, id: OrderId, owner: String, created_at: DateTime<Utc>) -> PlacedOrder {
        PlacedOrder {
            id,
            owner,
            created_at,
            order: self,
        }
    }
}

impl PlacedOrder {
    /// The `OnNewOrder` event that tells the read side about this order, with the customer's
    /// summary once it is counted and the order's positions.
    pub fn on_new_order(
        &self,
        customer: CustomerSummary,
        positions: (ListPositions, OwnerPositions),
        metadata: EventMetadata,
    ) -> EventEnvelope {
        let order = &self.order;
        let (list_positions, owner_positions) = positions;
        EventEnvelope::seal(
            OrderEvent::OnNewOrder(OnNewOrder {
                order_id: self.id,
                owner: self.owner.clone(),
                order: OrderDetails {
                    description: order.description.as_str().to_owned(),
                    quantity: u32::from(order.quantity.get()),
                    unit_price: order.unit_price.as_ref().map(|price| Money {
                        amount_minor: price.amount.get(),
                        currency: price.currency.as_str().to_owned(),
                    }),
                    customer: CustomerDetails {
                        email: order.customer.email.as_str().to_owned(),
                        first_name: order.customer.first_name.as_str().to_owned(),
                        last_name: order.customer.last_name.as_str().to_owned(),
                    },
                    created_at: self.created_at,
                },
                customer_summary: Some(customer),
                list_positions: Some(list_positions),
                owner_positions: Some(owner_positions),
            }),
            FIRST_AGGREGATE_VERSION,
            metadata,
        )
    }
}

/// The summaries a customer's orders of one group carry, in the group's order, given the
/// summary after the whole group: each order counts one version, one order and its quantity
/// more than the one before it. The orders of a group share one time, so every one of them
/// carries the group's `last_order_at`.
pub fn summaries_within_group(
    after_group: &CustomerSummary,
    quantities: &[Quantity],
) -> Vec<CustomerSummary> {
    let mut summary = after_group.clone();
    let mut summaries: Vec<CustomerSummary> = quantities
        .iter()
        .rev()
        .map(|quantity| {
            let after_this_order = summary.clone();
            summary.version = summary.version.saturating_sub(1);
            summary.placed_order_count = summary.placed_order_count.saturating_sub(1);
            summary.placed_quantity = summary
                .placed_quantity
                .saturating_sub(u64::from(quantity.get()));
            after_this_order
        })
        .collect();
    summaries.reverse();
    summaries
}

/// An order as the write model holds it, loaded to decide a command against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    /// The principal that placed it.
    pub owner: String,
    pub status: OrderStatus,
    pub version: u64,
    pub details: OrderDetails,
    /// Given when the order was placed; every event of the order carries them.
    pub list_positions: ListPositions,
    pub owner_positions: OwnerPositions,
}

/// A valid request to cancel an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    pub order_id: OrderId,
    /// Who asks: only the order's owner may cancel it; to anybody else it does not exist.
    pub principal: String,
    pub reason: Option<CancellationReason>,
    /// The version the caller last saw (`If-Match`); `None` cancels whatever the version.
    pub expected_version: Option<u64>,
}

/// Why an order cannot be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRejection {
    #[error("the order is at version {actual}, not the expected version {expected}")]
    VersionMismatch { expected: u64, actual: u64 },
    #[error("the order is already cancelled")]
    AlreadyCancelled,
}

impl OrderRecord {
    /// Decides `command`: the `OrderCancelled` event, carrying the customer's summary with the
    /// cancellation counted, or why the order cannot be cancelled. A stale expected version is
    /// reported before the status, so a client that acted on an old read learns that first.
    pub fn cancel(
        &self,
        command: &CancelOrder,
        cancelled_at: DateTime<Utc>,
        customer: CustomerSummary,
        metadata: EventMetadata,
    ) -> Result<EventEnvelope, CancelRejection> {
        if let Some(expected) = command.expected_version {
            if expected != self.version {
                return Err(CancelRejection::VersionMismatch {
                    expected,
                    actual: self.version,
                });
            }
        }
        if self.status == OrderStatus::Cancelled {
            return Err(CancelRejection::AlreadyCancelled);
        }
        Ok(EventEnvelope::seal(
            OrderEvent::OrderCancelled(OrderCancelled {
                order_id: self.id,
                owner: self.owner.clone(),
                reason: command
                    .reason
                    .as_ref()
                    .map(|reason| reason.as_str().to_owned()),
                cancelled_at,
                order: self.details.clone(),
                customer_summary: Some(customer),
                list_positions: Some(self.list_positions),
                owner_positions: Some(self.owner_positions),
            }),
            self.version + 1,
            metadata,
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use shared_events::EventId;
    use uuid::Uuid;

    use super::*;

    fn record(status: OrderStatus, version: u64) -> OrderRecord {
        let created_at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        OrderRecord {
            id: OrderId::from_uuid(Uuid::now_v7()),
            owner: "shop-frontend".to_owned(),
            status,
            version,
            details: OrderDetails {
                description: "Tea".to_owned(),
                quantity: 2,
                unit_price: None,
                customer: CustomerDetails {
                    email: "ada@example.com".to_owned(),
                    first_name: "Ada".to_owned(),
                    last_name: "Lovelace".to_owned(),
                },
                created_at,
            },
            list_positions: ListPositions {
                order: 12,
                customer: 3,
                customer_order: 1,
            },
            owner_positions: OwnerPositions {
                order: 4,
                customer: 2,
            },
        }
    }

    fn cancel(record: &OrderRecord, expected_version: Option<u64>) -> CancelOrder {
        CancelOrder {
            order_id: record.id,
            principal: record.owner.clone(),
            reason: Some(CancellationReason::parse("changed my mind".into()).unwrap()),
            expected_version,
        }
    }

    fn summary() -> CustomerSummary {
        CustomerSummary {
            version: 2,
            placed_order_count: 1,
            placed_quantity: 2,
            cancelled_order_count: 1,
            cancelled_quantity: 2,
            last_order_at: Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        }
    }

    fn metadata() -> EventMetadata {
        EventMetadata {
            event_id: EventId::from_uuid(Uuid::now_v7()),
            occurred_at: Utc::now(),
            correlation_id: "test".to_owned(),
        }
    }

    #[test]
    fn each_order_of_a_group_carries_the_summary_as_its_own_placement_left_it() {
        let after_group = CustomerSummary {
            version: 7,
            placed_order_count: 5,
            placed_quantity: 30,
            cancelled_order_count: 2,
            cancelled_quantity: 4,
            last_order_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
        };
        let quantities = [2, 3, 10].map(|quantity| Quantity::parse(quantity).unwrap());

        let summaries = summaries_within_group(&after_group, &quantities);

        let counts: Vec<_> = summaries
            .iter()
            .map(|summary| {
                (
                    summary.version,
                    summary.placed_order_count,
                    summary.placed_quantity,
                )
            })
            .collect();
        assert_eq!(counts, [(5, 3, 17), (6, 4, 20), (7, 5, 30)]);
        assert!(summaries
            .iter()
            .all(|summary| summary.cancelled_order_count == 2
                && summary.cancelled_quantity == 4
                && summary.last_order_at == after_group.last_order_at));
    }

    #[test]
    fn cancelling_a_placed_order_yields_the_next_version_with_the_whole_order() {
        let placed = record(OrderStatus::Placed, 1);
        let event = placed
            .cancel(&cancel(&placed, Some(1)), Utc::now(), summary(), metadata())
            .unwrap();
        assert_eq!(event.aggregate_version, 2);
        assert_eq!(event.event_type, "OrderCancelled");
        let OrderEvent::OrderCancelled(cancelled) = event.payload else {
            panic!("not an OrderCancelled");
        };
        assert_eq!(cancelled.order, placed.details);
        assert_eq!(cancelled.reason.as_deref(), Some("changed my mind"));
        assert_eq!(cancelled.customer_summary, Some(summary()));
        assert_eq!(cancelled.list_positions, Some(placed.list_positions));
        assert_eq!(cancelled.owner, placed.owner);
        assert_eq!(cancelled.owner_positions, Some(placed.owner_positions));
    }

    #[test]
    fn without_an_expected_version_any_version_may_be_cancelled() {
        let placed = record(OrderStatus::Placed, 7);
        assert!(placed
            .cancel(&cancel(&placed, None), Utc::now(), summary(), metadata())
            .is_ok());
    }

    #[test]
    fn a_stale_expected_version_is_rejected_with_both_versions() {
        let placed = record(OrderStatus::Placed, 2);
        let rejection = placed
            .cancel(&cancel(&placed, Some(1)), Utc::now(), summary(), metadata())
            .unwrap_err();
        assert_eq!(
            rejection,
            CancelRejection::VersionMismatch {
                expected: 1,
                actual: 2
            }
        );
    }

    #[test]
    fn a_cancelled_order_cannot_be_cancelled_again() {
        let cancelled = record(OrderStatus::Cancelled, 2);
        for expected in [None, Some(2)] {
            let rejection = cancelled
                .cancel(
                    &cancel(&cancelled, expected),
                    Utc::now(),
                    summary(),
                    metadata(),
                )
                .unwrap_err();
            assert_eq!(rejection, CancelRejection::AlreadyCancelled);
        }
    }
}
