use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};

/// An order as stored in the `orders` collection: the customer is embedded, as reads return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDocument {
    #[serde(rename = "_id")]
    pub id: String,
    pub description: String,
    pub quantity: i64,
    pub status: String,
    pub customer: EmbeddedCustomer,
    pub created_at: DateTime,
    /// The order's aggregate version: the number of its events applied so far.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedCustomer {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A customer's order summary in the `customers` collection, keyed by email. The document
/// also holds `countedOrderIds` and `namesAsOf`, the bookkeeping that keeps the summary
/// idempotent (see `ReadStore::count_order_for_customer`); reads leave them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDocument {
    #[serde(rename = "_id")]
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub order_count: i64,
    pub total_quantity: i64,
    pub last_order_at: DateTime,
}
