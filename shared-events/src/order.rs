use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::OrderId;

/// Every event of the order aggregate, in its latest schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OrderEvent {
    OnNewOrder(OnNewOrder),
}

impl OrderEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OnNewOrder(_) => OnNewOrder::EVENT_TYPE,
        }
    }

    pub fn schema_version(&self) -> u32 {
        match self {
            Self::OnNewOrder(_) => OnNewOrder::SCHEMA_VERSION,
        }
    }

    pub fn order_id(&self) -> OrderId {
        match self {
            Self::OnNewOrder(event) => event.order_id,
        }
    }

    /// The version the order has once this event is applied; a new order is version 1.
    pub fn aggregate_version(&self) -> u64 {
        match self {
            Self::OnNewOrder(_) => 1,
        }
    }
}

/// An order was placed. Schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnNewOrder {
    pub order_id: OrderId,
    pub description: String,
    pub quantity: u32,
    pub customer: CustomerDetails,
    pub created_at: DateTime<Utc>,
}

impl OnNewOrder {
    pub const EVENT_TYPE: &'static str = "OnNewOrder";
    pub const SCHEMA_VERSION: u32 = 1;
}

/// The customer as the order was placed; the email is the customer's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetails {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}
