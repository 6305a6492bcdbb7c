//! Earlier schema versions that may still sit in queues and in the event log, and how each
//! becomes the current version.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    CustomerDetails, CustomerSummary, ListPositions, OnNewOrder, OrderCancelled, OrderDetails,
    OrderId, OwnerPositions,
};

/// `OnNewOrder` as schema version 1 wrote it: everything but the unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnNewOrderV1 {
    pub order_id: OrderId,
    pub description: String,
    pub quantity: u32,
    pub customer: CustomerDetails,
    pub created_at: DateTime<Utc>,
}

impl OnNewOrderV1 {
    pub const SCHEMA_VERSION: u32 = 1;
}

/// Version 1 orders were placed before prices were recorded: their unit price is unknown.
impl From<OnNewOrderV1> for OnNewOrderV2 {
    fn from(v1: OnNewOrderV1) -> Self {
        Self {
            order_id: v1.order_id,
            order: OrderDetails {
                description: v1.description,
                quantity: v1.quantity,
                unit_price: None,
                customer: v1.customer,
                created_at: v1.created_at,
            },
        }
    }
}

// `OnNewOrder` as schema version 2 wrote it: everything but the customer's summary. Its
// documentation and schema name are those it was published with, so that its checked-in
// schema stays as it was.
/// An order was placed. Schema version 2: version 1 plus the unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OnNewOrder")]
pub struct OnNewOrderV2 {
    pub order_id: OrderId,
    #[serde(flatten)]
    pub order: OrderDetails,
}

impl OnNewOrderV2 {
    pub const SCHEMA_VERSION: u32 = 2;
}

/// Events before version 3 carry no summary.
impl From<OnNewOrderV2> for OnNewOrderV3 {
    fn from(v2: OnNewOrderV2) -> Self {
        Self {
            order_id: v2.order_id,
            order: v2.order,
            customer_summary: None,
        }
    }
}

// `OnNewOrder` as schema version 3 wrote it: everything but the list positions, documented and
// named as it was published.
/// An order was placed. Schema version 3: version 2 (version 1 plus the unit price) plus the
/// customer's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OnNewOrder")]
pub struct OnNewOrderV3 {
    pub order_id: OrderId,
    #[serde(flatten)]
    pub order: OrderDetails,
    /// The customer's summary with this order counted; `null` only in events upcast from
    /// earlier versions.
    #[serde(default)]
    pub customer_summary: Option<CustomerSummary>,
}

impl OnNewOrderV3 {
    pub const SCHEMA_VERSION: u32 = 3;
}

/// Events before version 4 carry no list positions: only a rebuild, replaying the event log
/// in order, numbers them (query-service's `rebuild::numbering`).
impl From<OnNewOrderV3> for OnNewOrderV4 {
    fn from(v3: OnNewOrderV3) -> Self {
        Self {
            order_id: v3.order_id,
            order: v3.order,
            customer_summary: v3.customer_summary,
            list_positions: None,
        }
    }
}

// `OnNewOrder` as schema version 4 wrote it: everything but the owner, documented and named as
// it was published.
/// An order was placed. Schema version 4: version 3 (the order, its unit price and the
/// customer's summary) plus the order's list positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OnNewOrder")]
pub struct OnNewOrderV4 {
    pub order_id: OrderId,
    #[serde(flatten)]
    pub order: OrderDetails,
    /// The customer's summary with this order counted; `null` only in events upcast from
    /// versions 1 and 2.
    #[serde(default)]
    pub customer_summary: Option<CustomerSummary>,
    /// `null` only in events upcast from versions 1 to 3.
    #[serde(default)]
    pub list_positions: Option<ListPositions>,
}

impl OnNewOrderV4 {
    pub const SCHEMA_VERSION: u32 = 4;
}

/// Orders placed before they had owners belong to the anonymous owner (`""`), as the
/// command side's migration `2026-12-02-000008_ownership` filed them: every order before was
/// that owner's, so its positions in the owner's listings are its list positions.
impl From<OnNewOrderV4> for OnNewOrder {
    fn from(v4: OnNewOrderV4) -> Self {
        Self {
            order_id: v4.order_id,
            owner: String::new(),
            order: v4.order,
            customer_summary: v4.customer_summary,
            owner_positions: v4.list_positions.map(owner_positions_of_anonymous),
            list_positions: v4.list_positions,
        }
    }
}

/// The anonymous owner's positions of an order placed before owners: its list positions.
fn owner_positions_of_anonymous(positions: ListPositions) -> OwnerPositions {
    OwnerPositions {
        order: positions.order,
        customer: positions.customer,
    }
}

// `OrderCancelled` as schema version 1 wrote it: everything but the customer's summary,
// documented and named as it was published.
/// An order was cancelled. Schema version 1.
///
/// It carries the whole order, not only what changed, so that a consumer can build the order
/// from this event alone: when the `OnNewOrder` before it is still waiting in a retry queue,
/// the cancellation must not leave a half-filled order behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OrderCancelled")]
pub struct OrderCancelledV1 {
    pub order_id: OrderId,
    /// Why the order was cancelled, as the customer or operator gave it.
    pub reason: Option<String>,
    pub cancelled_at: DateTime<Utc>,
    pub order: OrderDetails,
}

impl OrderCancelledV1 {
    pub const SCHEMA_VERSION: u32 = 1;
}

impl From<OrderCancelledV1> for OrderCancelledV2 {
    fn from(v1: OrderCancelledV1) -> Self {
        Self {
            order_id: v1.order_id,
            reason: v1.reason,
            cancelled_at: v1.cancelled_at,
            order: v1.order,
            customer_summary: None,
        }
    }
}

// `OrderCancelled` as schema version 2 wrote it: everything but the list positions,
// documented and named as it was published.
/// An order was cancelled. Schema version 2: version 1 plus the customer's summary.
///
/// It carries the whole order, not only what changed, so that a consumer can build the order
/// from this event alone: when the `OnNewOrder` before it is still waiting in a retry queue,
/// the cancellation must not leave a half-filled order behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OrderCancelled")]
pub struct OrderCancelledV2 {
    pub order_id: OrderId,
    /// Why the order was cancelled, as the customer or operator gave it.
    pub reason: Option<String>,
    pub cancelled_at: DateTime<Utc>,
    pub order: OrderDetails,
    /// The customer's summary with this cancellation counted; `null` only in events upcast
    /// from version 1.
    #[serde(default)]
    pub customer_summary: Option<CustomerSummary>,
}

impl OrderCancelledV2 {
    pub const SCHEMA_VERSION: u32 = 2;
}

impl From<OrderCancelledV2> for OrderCancelledV3 {
    fn from(v2: OrderCancelledV2) -> Self {
        Self {
            order_id: v2.order_id,
            reason: v2.reason,
            cancelled_at: v2.cancelled_at,
            order: v2.order,
            customer_summary: v2.customer_summary,
            list_positions: None,
        }
    }
}

// `OrderCancelled` as schema version 3 wrote it: everything but the owner, documented and
// named as it was published.
/// An order was cancelled. Schema version 3: version 2 (the order and the customer's summary)
/// plus the order's list positions.
///
/// It carries the whole order, not only what changed, so that a consumer can build the order
/// from this event alone: when the `OnNewOrder` before it is still waiting in a retry queue,
/// the cancellation must not leave a half-filled order behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OrderCancelled")]
pub struct OrderCancelledV3 {
    pub order_id: OrderId,
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
}

impl OrderCancelledV3 {
    pub const SCHEMA_VERSION: u32 = 3;
}

/// As for [`OnNewOrderV4`]: the order is the anonymous owner's.
impl From<OrderCancelledV3> for OrderCancelled {
    fn from(v3: OrderCancelledV3) -> Self {
        Self {
            order_id: v3.order_id,
            owner: String::new(),
            reason: v3.reason,
            cancelled_at: v3.cancelled_at,
            order: v3.order,
            customer_summary: v3.customer_summary,
            owner_positions: v3.list_positions.map(owner_positions_of_anonymous),
            list_positions: v3.list_positions,
        }
    }
}
