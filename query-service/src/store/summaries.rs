use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::results::UpdateResult;

use super::{
    duplicates_only, written_unless_duplicate, CustomerDocument, OrderDocument, ReadStore,
    StoreError, SummaryVersionDocument, LIST_PAGE_SPAN,
};

/// A customer's summary versions older than the newest are deleted once every this many
/// versions: the rest of the time a summary costs one document in a batched insert. A read
/// finds at most about this many versions of a customer.
pub const SUMMARY_VERSIONS_PER_COMPACTION: i64 = 8;

/// Where in [`SUMMARY_VERSIONS_PER_COMPACTION`] versions the customer `email`'s compactions
/// fall: spread by the email, so that customers who order at the same pace are not all
/// compacted in the same batches (one batch of deletes only, one second each, was measured
/// when they were). Stable across processes and releases (FNV-1a), as every replica must agree.
pub fn compaction_offset(email: &str) -> i64 {
    let hash = email.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % SUMMARY_VERSIONS_PER_COMPACTION as u64) as i64
}

/// Whether a batch carrying the customer `email`'s versions `lowest` to `newest` reaches one of
/// the customer's compaction points: `v` is one when `v + compaction_offset(email)` is a
/// multiple of [`SUMMARY_VERSIONS_PER_COMPACTION`].
pub fn reaches_compaction_point(email: &str, lowest: i64, newest: i64) -> bool {
    let points_up_to = |version: i64| {
        (version + compaction_offset(email)).div_euclid(SUMMARY_VERSIONS_PER_COMPACTION)
    };
    points_up_to(lowest - 1) < points_up_to(newest)
}

/// Customer list pages this process remembers per generation before it starts afresh.
const REMEMBERED_CUSTOMER_PAGES: usize = 100_000;

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

/// The newest summary a batch carries for one customer, and what it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryWrite {
    pub email: String,
    pub summary: CarriedSummary,
    /// The batch carries the customer's first summary version: their document may be new.
    pub first_version: bool,
    /// The batch's versions of the customer reach a compaction point (every
    /// [`SUMMARY_VERSIONS_PER_COMPACTION`] versions, shifted by [`compaction_offset`]).
    pub compact: bool,
}

impl CarriedSummary {
    fn fields(&self) -> Document {
        doc! {
            "summaryVersion": self.version,
            "orderCount": self.placed_order_count,
            "totalQuantity": self.placed_quantity,
            "cancelledOrderCount": self.cancelled_order_count,
            "cancelledQuantity": self.cancelled_quantity,
            "lastOrderAt": self.last_order_at,
            "firstName": &self.first_name,
            "lastName": &self.last_name,
        }
    }

    fn version_document(&self, email: &str, list_page: Option<i64>) -> SummaryVersionDocument {
        SummaryVersionDocument {
            id: format!("{email}/{}", self.version),
            customer_email: email.to_owned(),
            summary_version: self.version,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            placed_order_count: self.placed_order_count,
            placed_quantity: self.placed_quantity,
            cancelled_order_count: self.cancelled_order_count,
            cancelled_quantity: self.cancelled_quantity,
            last_order_at: self.last_order_at,
            list_page,
        }
    }
}

/// `customers` with the newest of `versions` of each, and the customers known only from
/// versions.
pub(super) fn with_newest_versions(
    customers: Vec<CustomerDocument>,
    versions: Vec<SummaryVersionDocument>,
) -> Vec<CustomerDocument> {
    let mut newest: HashMap<String, SummaryVersionDocument> = HashMap::new();
    for version in versions {
        match newest.get(&version.customer_email) {
            Some(kept) if kept.summary_version >= version.summary_version => {}
            _ => {
                newest.insert(version.customer_email.clone(), version);
            }
        }
    }
    let mut merged: Vec<CustomerDocument> = customers
        .into_iter()
        .map(|customer| match newest.remove(&customer.email) {
            Some(version) => customer.with_newer(&version),
            None => customer,
        })
        .collect();
    merged.extend(newest.values().map(CustomerDocument::unlisted));
    merged
}

impl ReadStore {
    /// Records each customer's newest carried summary in a batch, inserting only, which on
    /// FerretDB costs a small fraction of an update (docs/performance.md): one unordered
    /// insert of summary versions for the whole batch, keyed by email and version, so that a
    /// duplicate inserts nothing and an older version never hides a newer one (reads take the
    /// newest). A customer whose first version the batch carries gets their document, holding
    /// that summary, in one more unordered insert; the emails of those it inserted are
    /// returned, to be listed. Every [`SUMMARY_VERSIONS_PER_COMPACTION`] versions a
    /// customer's versions older than the newest are deleted. The customer's document keeps
    /// the summary it was inserted with: reads take the newest of it and the versions, and an
    /// update would cost more than all the inserts it saves.
    ///
    /// No update of many documents in one command: FerretDB 1.24 hangs on bulk updates (see
    /// docs/local-read-stores.md).
    pub async fn write_carried_summaries(
        &self,
        writes: &[SummaryWrite],
        concurrency: usize,
    ) -> Result<Vec<String>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let models = self.collections();
        let firsts: Vec<&SummaryWrite> = writes.iter().filter(|w| w.first_version).collect();
        let mut new_customers = Vec::new();
        if !firsts.is_empty() {
            let documents: Vec<Document> = firsts
                .iter()
                .map(|write| {
                    let mut document = write.summary.fields();
                    document.insert("_id", &write.email);
                    document.insert(UNLISTED, true);
                    document
                })
                .collect();
            let refused = match models
                .customers
                .clone_with_type::<Document>()
                .insert_many(&documents)
                .ordered(false)
                .await
            {
                Ok(_) => Vec::new(),
                Err(error) => duplicates_only(error)?,
            };
            new_customers = firsts
                .iter()
                .enumerate()
                .filter(|(index, _)| !refused.contains(index))
                .map(|(_, write)| write.email.clone())
                .collect();
        }
        let pages = self.customer_pages(writes, concurrency).await?;
        let versions: Vec<SummaryVersionDocument> = writes
            .iter()
            .map(|write| {
                let page = pages.get(&write.email).copied();
                write.summary.version_document(&write.email, page)
            })
            .collect();
        if let Err(error) = models.summaries.insert_many(&versions).ordered(false).await {
            duplicates_only(error)?;
        }
        let compactions: Vec<_> = writes
            .iter()
            .filter(|write| write.compact)
            .map(|write| self.delete_summary_versions_before(&write.email, write.summary.version))
            .collect();
        futures::stream::iter(compactions)
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(new_customers)
    }

    /// The list page of each customer of `writes` that is listed: remembered, or read from
    /// their document (once per customer and process).
    async fn customer_pages(
        &self,
        writes: &[SummaryWrite],
        concurrency: usize,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let models = self.collections();
        let (mut pages, unknown): (HashMap<String, i64>, Vec<&str>) = {
            let remembered = lock(&models.customer_pages);
            let mut pages = HashMap::new();
            let mut unknown = Vec::new();
            for write in writes {
                match remembered.get(&write.email) {
                    Some(&page) => {
                        pages.insert(write.email.clone(), page);
                    }
                    None => unknown.push(write.email.as_str()),
                }
            }
            (pages, unknown)
        };
        let lookups: Vec<_> = unknown
            .into_iter()
            .map(|email| {
                let customers = models.customers.clone_with_type::<Document>();
                async move {
                    let found = customers
                        .find_one(doc! { "_id": email })
                        .projection(doc! { "listPage": 1 })
                        .await?;
                    let page = found.and_then(|customer| customer.get_i64("listPage").ok());
                    Ok::<_, StoreError>(page.map(|page| (email.to_owned(), page)))
                }
            })
            .collect();
        let found: Vec<Option<(String, i64)>> = futures::stream::iter(lookups)
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let found: Vec<(String, i64)> = found.into_iter().flatten().collect();
        remember_customer_pages(&models.customer_pages, found.iter().cloned());
        pages.extend(found);
        Ok(pages)
    }

    /// Deletes the customer `email`'s summary versions older than `newest`, which is stored:
    /// a read never sees less than before.
    async fn delete_summary_versions_before(
        &self,
        email: &str,
        newest: i64,
    ) -> Result<(), StoreError> {
        self.collections()
            .summaries
            .delete_many(doc! { "customerEmail": email, "summaryVersion": { "$lt": newest } })
            .await?;
        Ok(())
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

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remembers customers' list pages, starting afresh past [`REMEMBERED_CUSTOMER_PAGES`].
pub(super) fn remember_customer_pages(
    remembered: &std::sync::Mutex<HashMap<String, i64>>,
    pages: impl IntoIterator<Item = (String, i64)>,
) {
    let mut remembered = lock(remembered);
    for (email, page) in pages {
        if remembered.len() >= REMEMBERED_CUSTOMER_PAGES {
            remembered.clear();
        }
        remembered.insert(email, page);
    }
}

/// The list page of list `position`.
pub(super) fn list_page_of(position: i64) -> i64 {
    position.div_euclid(LIST_PAGE_SPAN)
}
