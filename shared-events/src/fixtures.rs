//! Sample events for tests, and the golden encodings that pin the wire format.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::{
    CustomerDetails, EventEnvelope, EventId, EventMetadata, OnNewOrder, OrderEvent, OrderId,
};

/// The golden encoding of [`on_new_order_v1`]: an `OnNewOrder` event, schema version 1.
pub const ON_NEW_ORDER_V1_JSON: &str = include_str!("../fixtures/on_new_order_v1.json");

/// The event encoded in [`ON_NEW_ORDER_V1_JSON`].
pub fn on_new_order_v1() -> EventEnvelope {
    let created_at = fixed_time();
    new_order_event(
        OrderId::from_uuid(Uuid::from_u128(0x0193_5f3a_1c00_7000_8000_0000_0000_0001)),
        EventId::from_uuid(Uuid::from_u128(0x0193_5f3a_1c00_7000_8000_0000_0000_0002)),
        "ada@example.com",
        3,
        created_at,
    )
}

/// An `OnNewOrder` envelope for the given order, customer email and quantity.
pub fn new_order_event(
    order_id: OrderId,
    event_id: EventId,
    email: &str,
    quantity: u32,
    created_at: DateTime<Utc>,
) -> EventEnvelope {
    EventEnvelope::seal(
        OrderEvent::OnNewOrder(OnNewOrder {
            order_id,
            description: "Analytical engine punch cards".to_owned(),
            quantity,
            customer: CustomerDetails {
                email: email.to_owned(),
                first_name: "Ada".to_owned(),
                last_name: "Lovelace".to_owned(),
            },
            created_at,
        }),
        EventMetadata {
            event_id,
            occurred_at: created_at,
            correlation_id: format!("fixture-{event_id}"),
        },
    )
}

fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}
