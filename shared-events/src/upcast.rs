//! Earlier schema versions that may still sit in queues and in the event log, and how each
//! becomes the current version.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{CustomerDetails, OnNewOrder, OrderDetails, OrderId};

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
impl From<OnNewOrderV1> for OnNewOrder {
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
