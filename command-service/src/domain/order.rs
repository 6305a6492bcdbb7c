use chrono::{DateTime, Utc};
use shared_events::{
    CustomerDetails, EventEnvelope, EventMetadata, OnNewOrder, OrderEvent, OrderId,
};

use super::{Description, EmailAddress, PersonName, Quantity};

/// The customer as named on a command; the email identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
}

/// A valid request to place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub description: Description,
    pub quantity: Quantity,
    pub customer: Customer,
}

/// An order that has been given its identity and time; what the store persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub id: OrderId,
    pub created_at: DateTime<Utc>,
    pub order: NewOrder,
}

impl NewOrder {
    pub fn place(self, id: OrderId, created_at: DateTime<Utc>) -> PlacedOrder {
        PlacedOrder {
            id,
            created_at,
            order: self,
        }
    }
}

impl PlacedOrder {
    /// The `OnNewOrder` event that tells the read side about this order.
    pub fn on_new_order(&self, metadata: EventMetadata) -> EventEnvelope {
        let order = &self.order;
        EventEnvelope::seal(
            OrderEvent::OnNewOrder(OnNewOrder {
                order_id: self.id,
                description: order.description.as_str().to_owned(),
                quantity: u32::from(order.quantity.get()),
                customer: CustomerDetails {
                    email: order.customer.email.as_str().to_owned(),
                    first_name: order.customer.first_name.as_str().to_owned(),
                    last_name: order.customer.last_name.as_str().to_owned(),
                },
                created_at: self.created_at,
            }),
            metadata,
        )
    }
}
