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
    /// `None` for orders placed before prices were recorded.
    #[serde(default)]
    pub unit_price: Option<PriceDocument>,
    /// `placed` or `cancelled`.
    pub status: String,
    pub customer: EmbeddedCustomer,
    /// `customer.email` again, at the top level: FerretDB filters a top-level field through
    /// its index but scans the collection for a nested one (10 ms against 0.7 s at 20 000
    /// orders). `None` only in generations written before the field existed (shape 0), which
    /// a rebuild replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub created_at: DateTime,
    #[serde(default)]
    pub cancelled_at: Option<DateTime>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    /// The order's aggregate version: the number of its events applied so far.
    pub version: i64,
    /// Where the order stands in the newest-first listing: positions are handed out in the
    /// order orders are first projected (see `ReadStore::write_orders`). `None` in an order
    /// still to be written, and in orders written before listings used positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_position: Option<i64>,
    /// `list_position / LIST_PAGE_SPAN`: the listing reads a page of positions by equality on
    /// this field, the one kind of filter both MongoDB and FerretDB serve from an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_page: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceDocument {
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedCustomer {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A customer's order summary in the `customers` collection, keyed by email. The counts of
/// placed and of cancelled orders are kept apart, each idempotent on its own (see
/// `ReadStore::count_order_for_customer`), so that they commute: a cancellation applied before
/// its placement still sums up right. The document also holds `countedOrderIds`,
/// `cancelledOrderIds` and `namesAsOf`, the bookkeeping behind that; reads leave them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDocument {
    #[serde(rename = "_id")]
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Every order placed, cancelled or not. Stored as `orderCount`, the name it had when
    /// orders could not be cancelled.
    #[serde(rename = "orderCount")]
    pub placed_order_count: i64,
    #[serde(rename = "totalQuantity")]
    pub placed_quantity: i64,
    #[serde(default)]
    pub cancelled_order_count: i64,
    #[serde(default)]
    pub cancelled_quantity: i64,
    pub last_order_at: DateTime,
    /// The version of the carried summary the document holds; `None` while it holds counts
    /// of events that carried none. Newer versions may wait in `customerSummaries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_version: Option<i64>,
    /// Where the customer stands in the listing of customers: positions are handed out in the
    /// order customers are first seen (`ReadStore::list_new_customers`). `None` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_position: Option<i64>,
    /// `list_position / LIST_PAGE_SPAN`, read by equality as the orders' is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_page: Option<i64>,
}

/// One version of a customer's summary, as an event carried it, in `customerSummaries`: the
/// projection inserts these, and deletes the older ones every few versions (see
/// `ReadStore::write_carried_summaries`). `_id` is `<email>/<version>`, so a
/// redelivered event inserts nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryVersionDocument {
    #[serde(rename = "_id")]
    pub id: String,
    pub customer_email: String,
    pub summary_version: i64,
    pub first_name: String,
    pub last_name: String,
    #[serde(rename = "orderCount")]
    pub placed_order_count: i64,
    #[serde(rename = "totalQuantity")]
    pub placed_quantity: i64,
    pub cancelled_order_count: i64,
    pub cancelled_quantity: i64,
    pub last_order_at: DateTime,
    /// The customer's list page when the version was written, if it was listed by then: the
    /// customer listing reads the versions of a page by equality on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_page: Option<i64>,
}

impl CustomerDocument {
    /// This document with `version`'s summary, if that is newer than the one it holds.
    pub(super) fn with_newer(mut self, version: &SummaryVersionDocument) -> Self {
        if self
            .summary_version
            .is_some_and(|held| held >= version.summary_version)
        {
            return self;
        }
        self.first_name.clone_from(&version.first_name);
        self.last_name.clone_from(&version.last_name);
        self.placed_order_count = version.placed_order_count;
        self.placed_quantity = version.placed_quantity;
        self.cancelled_order_count = version.cancelled_order_count;
        self.cancelled_quantity = version.cancelled_quantity;
        self.last_order_at = version.last_order_at;
        self.summary_version = Some(version.summary_version);
        self
    }

    /// A customer known only from a summary version (its first event still to come).
    pub(super) fn unlisted(version: &SummaryVersionDocument) -> Self {
        Self {
            email: version.customer_email.clone(),
            first_name: version.first_name.clone(),
            last_name: version.last_name.clone(),
            placed_order_count: version.placed_order_count,
            placed_quantity: version.placed_quantity,
            cancelled_order_count: version.cancelled_order_count,
            cancelled_quantity: version.cancelled_quantity,
            last_order_at: version.last_order_at,
            summary_version: Some(version.summary_version),
            list_position: None,
            list_page: None,
        }
    }
}
