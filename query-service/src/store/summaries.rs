use mongodb::bson::{doc, DateTime, Document};
use mongodb::results::UpdateResult;

use super::{written_unless_duplicate, OrderDocument, ReadStore, StoreError};

/// Set on a customer's summary by the write that inserts it, until the summary has its list
/// position (`ReadStore::list_new_customers`).
pub(super) const UNLISTED: &str = "needsListPosition";

/// Whether an upsert's `result` inserted its document.
fn inserted(result: &Result<UpdateResult, mongodb::error::Error>) -> bool {
    matches!(result, Ok(update) if update.upserted_id.is_some())
}

/// A customer's summary as an event carried it, with the customer's names as of that event.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedSummary {
    pub version: i64,
    pub placed_order_count: i64,
    pub placed_quantity: i64,
    pub cancelled_order_count: i64,
    pub cancelled_quantity: i64,
    pub last_order_at: DateTime,
    pub first_name: String,
    pub last_name: String,
}

/// One order's contribution to its customer's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedOrder {
    pub order_id: String,
    pub first_name: String,
    pub last_name: String,
    pub quantity: i64,
    pub created_at: DateTime,
}

impl CountedOrder {
    pub fn of(order: &OrderDocument) -> Self {
        Self {
            order_id: order.id.clone(),
            first_name: order.customer.first_name.clone(),
            last_name: order.customer.last_name.clone(),
            quantity: order.quantity,
            created_at: order.created_at,
        }
    }

    fn names(&self) -> Document {
        doc! {
            "firstName": &self.first_name,
            "lastName": &self.last_name,
            "namesAsOf": self.created_at,
        }
    }
}

impl ReadStore {
    /// Replaces the summary of the customer `email` with `summary` unless it already holds
    /// one of the same or a higher version: one write of constant size, whatever the number of
    /// the customer's orders. The counting bookkeeping of events from before goes with it.
    ///
    /// One `update` command per document: FerretDB 1.24 hangs on bulk updates (see
    /// docs/mongodb-and-ferretdb.md). True when it inserted the customer.
    pub async fn write_customer_summary(
        &self,
        email: &str,
        summary: &CarriedSummary,
    ) -> Result<bool, StoreError> {
        let written = self
            .collections()
            .customers
            .update_one(
                doc! { "_id": email, "summaryVersion": { "$not": { "$gte": summary.version } } },
                doc! {
                    "$set": {
                        "summaryVersion": summary.version,
                        "orderCount": summary.placed_order_count,
                        "totalQuantity": summary.placed_quantity,
                        "cancelledOrderCount": summary.cancelled_order_count,
                        "cancelledQuantity": summary.cancelled_quantity,
                        "lastOrderAt": summary.last_order_at,
                        "firstName": &summary.first_name,
                        "lastName": &summary.last_name,
                    },
                    "$unset": { "countedOrderIds": "", "cancelledOrderIds": "", "namesAsOf": "" },
                    "$setOnInsert": { UNLISTED: true },
                },
            )
            .upsert(true)
            .await;
        let new_customer = inserted(&written);
        // A refusal means a summary of the same or a higher version is there.
        written_unless_duplicate(written)?;
        Ok(new_customer)
    }

    /// Adds `orders`, from events that carry no summary, to the summary of the customer
    /// `email`, each exactly once, and keeps the names of the customer's most recent order.
    /// A summary that a carried one has written counts them already and is left alone.
    ///
    /// Only single-document atomic updates are used (no aggregation, no transactions). The
    /// customer document lists the ids of the orders it counts, and the increment is
    /// conditional on the ids not being listed yet: a redelivered or duplicated event finds its
    /// order listed, the upsert then collides on `_id`, and nothing is counted twice. Names are
    /// replaced only by those of an order at least as recent, so a late event cannot bring back
    /// old names.
    ///
    /// The usual case, orders none of which is counted yet and none older than the stored
    /// names, costs one write that counts them all and takes the newest one's names. Anything
    /// else collides (a redelivery, an older order, or a cancellation, whose order is normally
    /// counted already), and each order is then applied in two steps, each idempotent on its
    /// own: the count, then the names if they are older. A crash between them is healed by the
    /// redelivery. True when it inserted the customer.
    pub async fn count_orders_for_customer(
        &self,
        email: &str,
        orders: &[CountedOrder],
    ) -> Result<bool, StoreError> {
        let Some(newest) = orders.iter().max_by_key(|order| order.created_at) else {
            return Ok(false);
        };
        let customers = self.collections().customers;
        let ids: Vec<&str> = orders.iter().map(|order| order.order_id.as_str()).collect();
        let quantity: i64 = orders.iter().map(|order| order.quantity).sum();
        let in_one_write = customers
            .update_one(
                doc! {
                    "_id": email,
                    "countedOrderIds": { "$nin": &ids },
                    "namesAsOf": { "$not": { "$gt": newest.created_at } },
                    "summaryVersion": { "$exists": false },
                },
                doc! {
                    "$inc": { "orderCount": ids.len() as i64, "totalQuantity": quantity },
                    "$push": { "countedOrderIds": { "$each": &ids } },
                    "$max": { "lastOrderAt": newest.created_at },
                    "$set": newest.names(),
                    "$setOnInsert": { UNLISTED: true },
                },
            )
            .upsert(true)
            .await;
        let new_customer = inserted(&in_one_write);
        if written_unless_duplicate(in_one_write)? {
            return Ok(new_customer);
        }
        for order in orders {
            customers
                .update_one(
                    doc! {
                        "_id": email,
                        "countedOrderIds": { "$ne": &order.order_id },
                        "summaryVersion": { "$exists": false },
                    },
                    doc! {
                        "$inc": { "orderCount": 1_i64, "totalQuantity": order.quantity },
                        "$push": { "countedOrderIds": &order.order_id },
                        "$max": { "lastOrderAt": order.created_at },
                    },
                )
                .await?;
            customers
                .update_one(
                    doc! {
                        "_id": email,
                        "namesAsOf": { "$not": { "$gt": order.created_at } },
                        "summaryVersion": { "$exists": false },
                    },
                    doc! { "$set": order.names() },
                )
                .await?;
        }
        Ok(false)
    }

    /// Records an order's cancellation in the summary of the customer `email` exactly once,
    /// the same way [`ReadStore::count_orders_for_customer`] records its placement. The
    /// customer document must exist: the projection counts the placement first.
    pub async fn count_cancellation_for_customer(
        &self,
        email: &str,
        order: &CountedOrder,
    ) -> Result<(), StoreError> {
        self.collections()
            .customers
            .update_one(
                doc! {
                    "_id": email,
                    "cancelledOrderIds": { "$ne": &order.order_id },
                    "summaryVersion": { "$exists": false },
                },
                doc! {
                    "$inc": { "cancelledOrderCount": 1_i64, "cancelledQuantity": order.quantity },
                    "$push": { "cancelledOrderIds": &order.order_id },
                },
            )
            .await?;
        Ok(())
    }
}
