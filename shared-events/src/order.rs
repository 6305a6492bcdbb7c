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

/// An order was placed. Schema version 5: version 4 (the order, its unit price, the
/// customer's summary and the order's list positions) plus its owner and its positions in its
/// owner's listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnNewOrder {
    pub order_id: OrderId,
    /// The principal that placed the order and owns it: its token's subject, or `""` for the
    /// anonymous principal of a service without auth (and for every order placed before
    /// orders had owners).
    pub owner: String,
    #[serde(flatten)]
    pub order: OrderDetails,
    /// The customer's summary with this order counted; `null` only in events upcast from
    /// versions 1 and 2.
    #[serde(default)]
    pub customer_summary: Option<CustomerSummary>,
    /// `null` only in events upcast from versions 1 to 3.
    #[serde(default)]
    pub list_positions: Option<ListPositions>,
    /// `null` only in events upcast from versions 1 to 3.
    #[serde(default)]
    pub owner_positions: Option<OwnerPositions>,
}

impl OnNewOrder {
    pub const EVENT_TYPE: &'static str = "OnNewOrder";
    pub const SCHEMA_VERSION: u32 = 5;
}

/// An order was cancelled. Schema version 4: version 3 (the order, the customer's summary and
/// the order's list positions) plus the order's owner and its positions in its owner's
/// listings.
///
/// It carries the whole order, not only what changed, so that a consumer can build the order
/// from this event alone: when the `OnNewOrder` before it is still waiting in a retry queue,
/// the cancellation must not leave a half-filled order behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: OrderId,
    /// The principal that placed the order and owns it, as [`OnNewOrder::owner`].
    pub owner: String,
    /// Why the order was cancelled, as the customer or operator gave it.
    pub reason: Option<String>,
    pub cancelled_at: DateTime<Utc>,
    pub order: OrderDetails,
    /// The customer's summary with this cancellation counted; `null` only in events upcast
    /// from version 1.
    #[serde(default)]
    pub customer_summary: Option<CustomerSummary>,
    /// `null` only in events upcast from versions 1 and 2.
    #[serde(default)]
    pub list_positions: Option<ListPositions>,
    /// `null` only in events upcast from versions 1 and 2.
    #[serde(default)]
    pub owner_positions: Option<OwnerPositions>,
}

impl OrderCancelled {
    pub const EVENT_TYPE: &'static str = "OrderCancelled";
    pub const SCHEMA_VERSION: u32 = 4;
}

/// Where an order stands in the listings, numbered by the command side in the transaction
/// that placed it, so that every consumer derives the same pages from the event alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPositions {
    /// The order's among all orders, in the order they were placed, from 1. A position taken
    /// by a transaction that rolled back is never given again: the numbers may have gaps.
    pub order: u64,
    /// The customer's among customers, in the order of their first orders, from 1; given
    /// with their first order, with gaps as the orders'.
    pub customer: u64,
    /// The order's among its customer's orders: 1 for their first, without gaps.
    pub customer_order: u64,
}

/// Where an order stands in its owner's listings: the owner's orders and the owner's
/// customers (a customer belongs to an owner: the same email under two owners is two
/// customers). Numbered by the command side as [`ListPositions`] are, with gaps as theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerPositions {
    /// The order's among its owner's orders, in the order they were placed, from 1.
    pub order: u64,
    /// The customer's among its owner's customers, in the order of their first orders, from 1.
    pub customer: u64,
}

/// A customer's order summary as of one event, kept by the command side in that event's own
/// transaction (event-carried state). Each of the customer's events raises `version` by one,
/// so a consumer keeps the summary of the highest version it has seen: one write of constant
/// size per customer, whatever the order in which events arrive or how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSummary {
    /// The number of the customer's placements and cancellations so far, this one included.
    pub version: u64,
    /// Orders placed, cancelled or not.
    pub placed_order_count: u64,
    pub placed_quantity: u64,
    pub cancelled_order_count: u64,
    pub cancelled_quantity: u64,
    /// When the customer's newest order was placed.
    pub last_order_at: DateTime<Utc>,
}

impl OrderEvent {
    /// The customer's summary the event carries, if it was published with one.
    pub fn customer_summary(&self) -> Option<&CustomerSummary> {
        match self {
            Self::OnNewOrder(event) => event.customer_summary.as_ref(),
            Self::OrderCancelled(event) => event.customer_summary.as_ref(),
        }
    }

    /// The order's list positions, if the event was published with them.
    pub fn list_positions(&self) -> Option<ListPositions> {
        match self {
            Self::OnNewOrder(event) => event.list_positions,
            Self::OrderCancelled(event) => event.list_positions,
        }
    }

    /// The order's positions in its owner's listings, if the event was published with them.
    pub fn owner_positions(&self) -> Option<OwnerPositions> {
        match self {
            Self::OnNewOrder(event) => event.owner_positions,
            Self::OrderCancelled(event) => event.owner_positions,
        }
    }

    /// The principal that owns the order.
    pub fn owner(&self) -> &str {
        match self {
            Self::OnNewOrder(event) => &event.owner,
            Self::OrderCancelled(event) => &event.owner,
        }
    }
}

/// What was ordered, by whom, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetails {
    pub description: String,
    pub quantity: u32,
    /// The price of one unit; `null` for an order placed without one (a price is optional,
    /// and no `OnNewOrder` of schema version 1 has one).
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

/// Where an order is in its life, as both sides name it: the write model's `status` column
/// and the read model's `status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Placed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "placed" => Some(Self::Placed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}
