//! Sample events for tests, and the golden encodings that pin the wire format.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::{
    CustomerDetails, CustomerSummary, EventEnvelope, EventId, EventMetadata, ListPositions, Money,
    OnNewOrder, OnNewOrderV1, OnNewOrderV2, OnNewOrderV3, OnNewOrderV4, OrderCancelled,
    OrderCancelledV1, OrderCancelledV2, OrderCancelledV3, OrderDetails, OrderEvent, OrderId,
    OwnerPositions, FIRST_AGGREGATE_VERSION,
};

/// The golden encoding of [`on_new_order_v1`], as the first release published it.
pub const ON_NEW_ORDER_V1_JSON: &str = include_str!("../fixtures/on_new_order_v1.json");

/// The golden encoding of [`on_new_order_v2`].
pub const ON_NEW_ORDER_V2_JSON: &str = include_str!("../fixtures/on_new_order_v2.json");

/// The golden encoding of [`on_new_order_v3`].
pub const ON_NEW_ORDER_V3_JSON: &str = include_str!("../fixtures/on_new_order_v3.json");

/// The golden encoding of [`order_cancelled_v1`].
pub const ORDER_CANCELLED_V1_JSON: &str = include_str!("../fixtures/order_cancelled_v1.json");

/// The golden encoding of [`on_new_order_v4`].
pub const ON_NEW_ORDER_V4_JSON: &str = include_str!("../fixtures/on_new_order_v4.json");

/// The golden encoding of [`order_cancelled_v2`].
pub const ORDER_CANCELLED_V2_JSON: &str = include_str!("../fixtures/order_cancelled_v2.json");

/// The golden encoding of [`order_cancelled_v3`].
pub const ORDER_CANCELLED_V3_JSON: &str = include_str!("../fixtures/order_cancelled_v3.json");

/// The golden encoding of [`on_new_order_v5`].
pub const ON_NEW_ORDER_V5_JSON: &str = include_str!("../fixtures/on_new_order_v5.json");

/// The golden encoding of [`order_cancelled_v4`].
pub const ORDER_CANCELLED_V4_JSON: &str = include_str!("../fixtures/order_cancelled_v4.json");

/// The owner of the orders of [`on_new_order_v5`] and [`order_cancelled_v4`].
pub const FIXTURE_OWNER: &str = "shop-frontend";

const FIXTURE_ORDER: u128 = 0x0193_5f3a_1c00_7000_8000_0000_0000_0001;
const PLACED_EVENT: u128 = 0x0193_5f3a_1c00_7000_8000_0000_0000_0003;
const CANCELLED_EVENT: u128 = 0x0193_5f3a_1c00_7000_8000_0000_0000_0004;
const CANCELLATION_REASON: &str = "Ordered twice by mistake";

/// An `OnNewOrder` of schema version 1, built the way the first release built it.
pub fn on_new_order_v1() -> EventEnvelope<OnNewOrderV1> {
    let created_at = fixed_time();
    let event_id = EventId::from_uuid(Uuid::from_u128(0x0193_5f3a_1c00_7000_8000_0000_0000_0002));
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    EventEnvelope {
        event_id,
        event_type: OnNewOrder::EVENT_TYPE.to_owned(),
        schema_version: OnNewOrderV1::SCHEMA_VERSION,
        occurred_at: created_at,
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION,
        correlation_id: format!("fixture-{event_id}"),
        payload: OnNewOrderV1 {
            order_id,
            description: "Analytical engine punch cards".to_owned(),
            quantity: 3,
            customer: ada("ada@example.com"),
            created_at,
        },
    }
}

/// The event encoded in [`ON_NEW_ORDER_V2_JSON`].
pub fn on_new_order_v2() -> EventEnvelope<OnNewOrderV2> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(PLACED_EVENT));
    EventEnvelope {
        event_id,
        event_type: OnNewOrder::EVENT_TYPE.to_owned(),
        schema_version: OnNewOrderV2::SCHEMA_VERSION,
        occurred_at: fixed_time(),
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION,
        correlation_id: format!("fixture-{event_id}"),
        payload: OnNewOrderV2 {
            order_id,
            order: order_details("ada@example.com", 3, fixed_time()),
        },
    }
}

/// The event encoded in [`ON_NEW_ORDER_V3_JSON`]: Ada's first order.
pub fn on_new_order_v3() -> EventEnvelope<OnNewOrderV3> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(PLACED_EVENT));
    EventEnvelope {
        event_id,
        event_type: OnNewOrder::EVENT_TYPE.to_owned(),
        schema_version: OnNewOrderV3::SCHEMA_VERSION,
        occurred_at: fixed_time(),
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION,
        correlation_id: format!("fixture-{event_id}"),
        payload: OnNewOrderV3 {
            order_id,
            order: order_details("ada@example.com", 3, fixed_time()),
            customer_summary: Some(ada_after_first_order()),
        },
    }
}

/// The event encoded in [`ON_NEW_ORDER_V4_JSON`]: Ada's first order, the 41st order placed,
/// Ada the 7th customer.
pub fn on_new_order_v4() -> EventEnvelope<OnNewOrderV4> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(PLACED_EVENT));
    EventEnvelope {
        event_id,
        event_type: OnNewOrder::EVENT_TYPE.to_owned(),
        schema_version: OnNewOrderV4::SCHEMA_VERSION,
        occurred_at: fixed_time(),
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION,
        correlation_id: format!("fixture-{event_id}"),
        payload: OnNewOrderV4 {
            order_id,
            order: order_details("ada@example.com", 3, fixed_time()),
            customer_summary: Some(ada_after_first_order()),
            list_positions: Some(fixture_positions()),
        },
    }
}

/// The event encoded in [`ON_NEW_ORDER_V5_JSON`]: the order of [`on_new_order_v4`], placed
/// by [`FIXTURE_OWNER`]: its 12th order, Ada its 3rd customer.
pub fn on_new_order_v5() -> EventEnvelope {
    with_owner(
        with_list_positions(
            with_customer_summary(
                new_order_event(
                    OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER)),
                    EventId::from_uuid(Uuid::from_u128(PLACED_EVENT)),
                    "ada@example.com",
                    3,
                    fixed_time(),
                ),
                ada_after_first_order(),
            ),
            fixture_positions(),
        ),
        FIXTURE_OWNER,
        fixture_owner_positions(),
    )
}

fn ada_after_first_order() -> CustomerSummary {
    CustomerSummary {
        version: 1,
        placed_order_count: 1,
        placed_quantity: 3,
        cancelled_order_count: 0,
        cancelled_quantity: 0,
        last_order_at: fixed_time(),
    }
}

fn fixture_positions() -> ListPositions {
    ListPositions {
        order: 41,
        customer: 7,
        customer_order: 1,
    }
}

fn fixture_owner_positions() -> OwnerPositions {
    OwnerPositions {
        order: 12,
        customer: 3,
    }
}

/// The event encoded in [`ORDER_CANCELLED_V1_JSON`]: the order of [`on_new_order_v2`],
/// cancelled an hour later.
pub fn order_cancelled_v1() -> EventEnvelope<OrderCancelledV1> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(CANCELLED_EVENT));
    let cancelled_at = fixed_time() + chrono::Duration::hours(1);
    EventEnvelope {
        event_id,
        event_type: OrderCancelled::EVENT_TYPE.to_owned(),
        schema_version: OrderCancelledV1::SCHEMA_VERSION,
        occurred_at: cancelled_at,
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION + 1,
        correlation_id: format!("fixture-{event_id}"),
        payload: OrderCancelledV1 {
            order_id,
            reason: Some(CANCELLATION_REASON.to_owned()),
            cancelled_at,
            order: order_details("ada@example.com", 3, fixed_time()),
        },
    }
}

/// The event encoded in [`ORDER_CANCELLED_V2_JSON`]: the order of [`on_new_order_v3`],
/// cancelled an hour later.
pub fn order_cancelled_v2() -> EventEnvelope<OrderCancelledV2> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(CANCELLED_EVENT));
    let cancelled_at = fixed_time() + chrono::Duration::hours(1);
    EventEnvelope {
        event_id,
        event_type: OrderCancelled::EVENT_TYPE.to_owned(),
        schema_version: OrderCancelledV2::SCHEMA_VERSION,
        occurred_at: cancelled_at,
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION + 1,
        correlation_id: format!("fixture-{event_id}"),
        payload: OrderCancelledV2 {
            order_id,
            reason: Some(CANCELLATION_REASON.to_owned()),
            cancelled_at,
            order: order_details("ada@example.com", 3, fixed_time()),
            customer_summary: Some(ada_after_cancelling()),
        },
    }
}

/// The event encoded in [`ORDER_CANCELLED_V3_JSON`]: the order of [`on_new_order_v4`],
/// cancelled an hour later.
pub fn order_cancelled_v3() -> EventEnvelope<OrderCancelledV3> {
    let order_id = OrderId::from_uuid(Uuid::from_u128(FIXTURE_ORDER));
    let event_id = EventId::from_uuid(Uuid::from_u128(CANCELLED_EVENT));
    let cancelled_at = fixed_time() + chrono::Duration::hours(1);
    EventEnvelope {
        event_id,
        event_type: OrderCancelled::EVENT_TYPE.to_owned(),
        schema_version: OrderCancelledV3::SCHEMA_VERSION,
        occurred_at: cancelled_at,
        aggregate_id: order_id,
        aggregate_version: FIRST_AGGREGATE_VERSION + 1,
        correlation_id: format!("fixture-{event_id}"),
        payload: OrderCancelledV3 {
            order_id,
            reason: Some(CANCELLATION_REASON.to_owned()),
            cancelled_at,
            order: order_details("ada@example.com", 3, fixed_time()),
            customer_summary: Some(ada_after_cancelling()),
            list_positions: Some(fixture_positions()),
        },
    }
}

/// The event encoded in [`ORDER_CANCELLED_V4_JSON`]: the order of [`on_new_order_v5`],
/// cancelled an hour later.
pub fn order_cancelled_v4() -> EventEnvelope {
    with_owner(
        with_list_positions(
            with_customer_summary(
                cancellation_of(
                    &on_new_order_v5(),
                    EventId::from_uuid(Uuid::from_u128(CANCELLED_EVENT)),
                    fixed_time() + chrono::Duration::hours(1),
                ),
                ada_after_cancelling(),
            ),
            fixture_positions(),
        ),
        FIXTURE_OWNER,
        fixture_owner_positions(),
    )
}

fn ada_after_cancelling() -> CustomerSummary {
    CustomerSummary {
        version: 2,
        placed_order_count: 1,
        placed_quantity: 3,
        cancelled_order_count: 1,
        cancelled_quantity: 3,
        last_order_at: fixed_time(),
    }
}

/// `event` carrying `summary`, as the command side publishes it.
pub fn with_customer_summary(mut event: EventEnvelope, summary: CustomerSummary) -> EventEnvelope {
    match &mut event.payload {
        OrderEvent::OnNewOrder(placed) => placed.customer_summary = Some(summary),
        OrderEvent::OrderCancelled(cancelled) => cancelled.customer_summary = Some(summary),
    }
    event
}

/// `event` with `positions`, as the command side publishes it.
pub fn with_list_positions(mut event: EventEnvelope, positions: ListPositions) -> EventEnvelope {
    match &mut event.payload {
        OrderEvent::OnNewOrder(placed) => placed.list_positions = Some(positions),
        OrderEvent::OrderCancelled(cancelled) => cancelled.list_positions = Some(positions),
    }
    event
}

/// `event` owned by `owner` at `positions` in its listings, as the command side publishes it.
pub fn with_owner(
    mut event: EventEnvelope,
    owner: &str,
    positions: OwnerPositions,
) -> EventEnvelope {
    match &mut event.payload {
        OrderEvent::OnNewOrder(placed) => {
            placed.owner = owner.to_owned();
            placed.owner_positions = Some(positions);
        }
        OrderEvent::OrderCancelled(cancelled) => {
            cancelled.owner = owner.to_owned();
            cancelled.owner_positions = Some(positions);
        }
    }
    event
}

/// An `OnNewOrder` envelope (current version) for the given order, customer and quantity, at
/// 12.50 EUR a unit, the anonymous owner's, with neither a customer summary nor positions (as
/// if upcast from version 2): [`with_customer_summary`], [`with_list_positions`] and
/// [`with_owner`] add them.
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
            owner: String::new(),
            order: order_details(email, quantity, created_at),
            customer_summary: None,
            list_positions: None,
            owner_positions: None,
        }),
        1,
        metadata(event_id, created_at),
    )
}

/// The `OrderCancelled` envelope (current version) of the order `placed` placed, carrying that
/// order whole and its owner, at `cancelled_at`, with neither a customer summary nor
/// positions.
pub fn cancellation_of(
    placed: &EventEnvelope,
    event_id: EventId,
    cancelled_at: DateTime<Utc>,
) -> EventEnvelope {
    EventEnvelope::seal(
        OrderEvent::OrderCancelled(OrderCancelled {
            order_id: placed.aggregate_id,
            owner: placed.payload.owner().to_owned(),
            reason: Some(CANCELLATION_REASON.to_owned()),
            cancelled_at,
            order: placed.payload.order().clone(),
            customer_summary: None,
            list_positions: None,
            owner_positions: None,
        }),
        placed.aggregate_version + 1,
        metadata(event_id, cancelled_at),
    )
}

fn order_details(email: &str, quantity: u32, created_at: DateTime<Utc>) -> OrderDetails {
    OrderDetails {
        description: "Analytical engine punch cards".to_owned(),
        quantity,
        unit_price: Some(Money {
            amount_minor: 1250,
            currency: "EUR".to_owned(),
        }),
        customer: ada(email),
        created_at,
    }
}

fn ada(email: &str) -> CustomerDetails {
    CustomerDetails {
        email: email.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
    }
}

fn metadata(event_id: EventId, occurred_at: DateTime<Utc>) -> EventMetadata {
    EventMetadata {
        event_id,
        occurred_at,
        correlation_id: format!("fixture-{event_id}"),
    }
}

fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}
