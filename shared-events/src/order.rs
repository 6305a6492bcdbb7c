use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::OrderId;

/// Every event of the order aggregate, in its latest schema version. Older versions are
/// upcast to these when decoded (see [`crate::RawEnvelope::into_typed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OrderEvent {
    OnNewOrder(OnNewOrder),
    OrderCancelled(OrderCancelled),
}

impl OrderEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OnNewOrder(_) => OnNewOrder::EVENT_TYPE,
            Self::OrderCancelled(_) => OrderCancelled::EVENT_TYPE,
        }
    }

    pub fn schema_version(&self) -> u32 {
        match self {
            Self::OnNewOrder(_) => OnNewOrder::SCHEMA_VERSION,
            Self::OrderCancelled(_) => OrderCancelled::SCHEMA_VERSION,
        }
    }

    pub fn order_id(&self) -> OrderId {
        match self {
            Self::OnNewOrder(event) => event.order_id,
            Self::OrderCancelled(event) => event.order_id,
        }
    }

    /// The order as of this event; every order event carries it whole.
    pub fn order(&self) -> &OrderDetails {
        match self {
            Self::OnNewOrder(event) => &event.order,
            Self::OrderCancelled(event) => &event.order,
        }
    }
}

/// An order was placed. Schema version 2: version 1 plus the unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnNewOrder {
    pub order_id: OrderId,
    #[serde(flatten)]
    pub order: OrderDetails,
}

impl OnNewOrder {
    pub const EVENT_TYPE: &'static str = "OnNewOrder";
    pub const SCHEMA_VERSION: u32 = 2;
}

/// An order was cancelled. Schema version 1.
///
/// It carries the whole order, not only what changed, so that a consumer can build the order
/// from this event alone: when the `OnNewOrder` before it is still waiting in a retry queue,
/// the cancellation must not leave a half-filled order behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: OrderId,
    /// Why the order was cancelled, as the customer or operator gave it.
    pub reason: Option<String>,
    pub cancelled_at: DateTime<Utc>,
    pub order: OrderDetails,
}

impl OrderCancelled {
    pub const EVENT_TYPE: &'static str = "OrderCancelled";
    pub const SCHEMA_VERSION: u32 = 1;
}

/// What was ordered, by whom, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetails {
    pub description: String,
    pub quantity: u32,
    /// The price of one unit; `null` for orders placed before prices were recorded
    /// (every `OnNewOrder` of schema version 1).
    #[serde(default)]
    pub unit_price: Option<Money>,
    pub customer: CustomerDetails,
    pub created_at: DateTime<Utc>,
}

/// An amount in the minor unit of its currency (cents for EUR and USD, yen for JPY), so that
/// no floating point ever touches money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code, such as `EUR`.
    pub currency: String,
}

/// The customer as the order was placed; the email is the customer's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetails {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}
