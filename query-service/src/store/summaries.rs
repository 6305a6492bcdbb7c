use mongodb::bson::{doc, DateTime};

use super::{written_unless_duplicate, ReadStore, StoreError};

/// One order's contribution to its customer's summary.
#[derive(Debug, Clone)]
pub struct CountedOrder<'a> {
    pub order_id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub quantity: i64,
    pub created_at: DateTime,
}

impl ReadStore {
    /// Adds an order to its customer's summary exactly once, and keeps the names of the
    /// customer's most recent order.
    ///
    /// Only single-document atomic updates are used (no aggregation, no transactions). The
    /// customer document lists the ids of the orders it counts, and the increment is
    /// conditional on the id not being listed yet: a redelivered or duplicated event finds it
    /// listed, the upsert then collides on `_id`, and nothing is counted twice. Names are
    /// replaced only by those of an order at least as recent, so a late event cannot bring back
    /// old names.
    ///
    /// The usual event, a customer's first order or a newer one not counted yet, costs one
    /// write that counts it and takes its names. Any other collides (a redelivery, an older
    /// order, or a cancellation, whose order is normally counted already), and is then applied
    /// in two steps, each idempotent on its own: the count, then the names if they are older. A
    /// crash between them is healed by the redelivery.
    pub async fn count_order_for_customer(
        &self,
        order: &CountedOrder<'_>,
    ) -> Result<(), StoreError> {
        let customers = self.collections().customers;
        let count = doc! {
            "$inc": { "orderCount": 1_i64, "totalQuantity": order.quantity },
            "$push": { "countedOrderIds": order.order_id },
            "$max": { "lastOrderAt": order.created_at },
        };
        let names = doc! {
            "firstName": order.first_name,
            "lastName": order.last_name,
            "namesAsOf": order.created_at,
        };
        let not_counted = doc! { "$ne": order.order_id };
        let names_not_newer = doc! { "$not": { "$gt": order.created_at } };

        let mut count_with_names = count.clone();
        count_with_names.insert("$set", names.clone());
        let in_one_write = customers
            .update_one(
                doc! {
                    "_id": order.email,
                    "countedOrderIds": not_counted.clone(),
                    "namesAsOf": names_not_newer.clone(),
                },
                count_with_names,
            )
            .upsert(true)
            .await;
        if written_unless_duplicate(in_one_write)? {
            return Ok(());
        }
        customers
            .update_one(
                doc! { "_id": order.email, "countedOrderIds": not_counted },
                count,
            )
            .await?;
        customers
            .update_one(
                doc! { "_id": order.email, "namesAsOf": names_not_newer },
                doc! { "$set": names },
            )
            .await?;
        Ok(())
    }

    /// Records an order's cancellation in its customer's summary exactly once, the same way
    /// [`ReadStore::count_order_for_customer`] records its placement. The customer document
    /// must exist: the projection counts the placement first.
    pub async fn count_cancellation_for_customer(
        &self,
        order: &CountedOrder<'_>,
    ) -> Result<(), StoreError> {
        self.collections()
            .customers
            .update_one(
                doc! { "_id": order.email, "cancelledOrderIds": { "$ne": order.order_id } },
                doc! {
                    "$inc": { "cancelledOrderCount": 1_i64, "cancelledQuantity": order.quantity },
                    "$push": { "cancelledOrderIds": order.order_id },
                },
            )
            .await?;
        Ok(())
    }
}
