//! The read models in MongoDB (or any server speaking its wire protocol, such as FerretDB).
//! Only single-document writes are used: no transactions, no change streams.
//!
//! The read models come in generations, so that a rebuild can fill fresh collections while
//! the live ones keep serving and then take over in one atomic step (see [`generations`]).

mod documents;
mod generations;
mod listing;
mod summaries;

pub use documents::{
    CustomerDocument, EmbeddedCustomer, OrderDocument, PriceDocument, SummaryVersionDocument,
};
pub use generations::{Generation, ReadModels, CURRENT_SHAPE};
pub use listing::Listing;
pub use summaries::{
    compaction_offset, reaches_compaction_point, CarriedSummary, CountedOrder, SummaryWrite,
    SUMMARY_VERSIONS_PER_COMPACTION,
};

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, InsertManyError, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Database, IndexModel};

use shared_events::FIRST_AGGREGATE_VERSION;

use crate::config::MongoSettings;

const DUPLICATE_KEY: i32 = 11000;
const INDEX_NOT_FOUND: i32 = 27;
const FIRST_ORDER_VERSION: i64 = FIRST_AGGREGATE_VERSION as i64;
/// Indexes of earlier releases that no query uses any more: the nested `customer.email`, and
/// the `createdAt` orderings listings used before they read pages of list positions.
const RETIRED_INDEXES: [&str; 3] = [
    "by_customer_newest_first",
    "newest_first",
    "by_customer_email_newest_first",
];

/// Errors of the read store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the read database is unavailable: {0}")]
    Unavailable(#[source] mongodb::error::Error),
    #[error("a read-database operation failed: {0}")]
    Operation(#[source] mongodb::error::Error),
    #[error("the read database did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
}

impl From<mongodb::error::Error> for StoreError {
    fn from(error: mongodb::error::Error) -> Self {
        match *error.kind {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. } => Self::Unavailable(error),
            _ => Self::Operation(error),
        }
    }
}

/// Leaves the summary's bookkeeping out of customer reads.
pub(super) fn customer_fields() -> Document {
    doc! { "countedOrderIds": 0, "cancelledOrderIds": 0, "namesAsOf": 0 }
}

/// The document's fields for a `$set`; `_id` is left out, the filter supplies it on insert.
fn fields_without_id<T: serde::Serialize>(document: &T) -> Result<Document, StoreError> {
    let mut fields = mongodb::bson::to_document(document)
        .map_err(|error| StoreError::Operation(error.into()))?;
    fields.remove("_id");
    Ok(fields)
}

/// Whether a write that a duplicate `_id` may refuse wrote. A refusal is an answer, not an
/// error: a guarded upsert (an update whose filter holds a condition besides `_id`, with
/// `upsert`) whose condition is false for the existing document tries to insert a second one
/// and collides, and so does an insert of a document that is already there.
fn written_unless_duplicate<T>(
    result: Result<T, mongodb::error::Error>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if matches!(
                &*error.kind,
                ErrorKind::Write(WriteFailure::WriteError(write)) if write.code == DUPLICATE_KEY
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// The positions an unordered insert refused as duplicates; any other failure is an error.
fn duplicates_only(error: mongodb::error::Error) -> Result<Vec<usize>, StoreError> {
    if let ErrorKind::InsertMany(InsertManyError {
        write_errors: Some(write_errors),
        write_concern_error: None,
        ..
    }) = &*error.kind
    {
        if write_errors.iter().all(|write| write.code == DUPLICATE_KEY) {
            return Ok(write_errors.iter().map(|write| write.index).collect());
        }
    }
    Err(error.into())
}

/// A page of a listing: up to `limit` items from `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub start: Start,
}

/// Where a page of a listing starts: `skip` items after the `after` cursor, or after the
/// listing's beginning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    pub after: Option<Cursor>,
    pub skip: u64,
}

/// An item of a listing, which the next page starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The order or customer at this list position.
    Position(i64),
}

impl Start {
    pub fn after(cursor: Cursor) -> Self {
        Self {
            after: Some(cursor),
            skip: 0,
        }
    }
}

/// Positions per page of the newest-first order listing: one equality lookup reads at most
/// this many orders.
pub const LIST_PAGE_SPAN: i64 = 64;

/// Page lookups one listing request may make beyond those its limit needs, to pass positions
/// handed out to orders that were never written (a duplicate's, or a crashed batch's).
const SPARE_PAGE_LOOKUPS: usize = 16;

/// Handle to the read models; cheap to clone. It follows the active generation, or stays on
/// one generation when made by [`ReadStore::pinned`].
#[derive(Clone)]
pub struct ReadStore {
    database: Database,
    models: Arc<RwLock<ReadModels>>,
    deadlines: Deadlines,
}

/// How long the store waits for the server. The driver sets no deadline on an operation (it
/// does not support `socketTimeoutMS`), so a server that stops answering on an open connection
/// would hold a request or the projection forever; past a deadline the operation is abandoned
/// (the driver closes a connection dropped mid-command) and fails as [`StoreError::TimedOut`].
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// One read of a request.
    read: Duration,
    /// All the writes of one batch of the projection.
    batch: Duration,
}

impl ReadStore {
    /// Prepares the client on generation 0; [`ReadStore::follow_active_generation`] moves it
    /// to the active one. The client connects lazily, on the first operation.
    pub async fn new(settings: &MongoSettings) -> Result<Self, StoreError> {
        let mut options = ClientOptions::parse(&settings.uri).await?;
        options.app_name = Some("query-service".to_owned());
        options.server_selection_timeout = Some(settings.timeout());
        options.connect_timeout = Some(settings.timeout());
        let database = Client::with_options(options)?.database(&settings.database);
        let models = ReadModels::of(&database, Generation::FIRST);
        Ok(Self {
            database,
            models: Arc::new(RwLock::new(models)),
            deadlines: Deadlines {
                read: settings.read_timeout(),
                batch: settings.batch_timeout(),
            },
        })
    }

    /// A store on `generation`'s collections that never moves to another: for writing a new
    /// generation.
    pub fn pinned(&self, generation: Generation) -> Self {
        Self {
            database: self.database.clone(),
            models: Arc::new(RwLock::new(ReadModels::of(&self.database, generation))),
            deadlines: self.deadlines,
        }
    }

    /// `read`, failed as [`StoreError::TimedOut`] past the read deadline.
    async fn within_read_deadline<T>(
        &self,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within(self.deadlines.read, read).await
    }

    /// `writes`, one batch of the projection's, failed as [`StoreError::TimedOut`] past the
    /// batch deadline. Every write of a batch is idempotent, so the batch can be retried.
    pub async fn within_batch_deadline<T>(
        &self,
        writes: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within(self.deadlines.batch, writes).await
    }

    /// The collections reads and writes go to now.
    fn collections(&self) -> ReadModels {
        match self.models.read() {
            Ok(models) => models.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn generation(&self) -> Generation {
        self.collections().generation
    }

    /// Creates the indexes the queries rely on; safe to run on every start.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let index = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        let orders = self.collections().orders;
        // One index per command: FerretDB 1.24 on SQLite, the local stack's earlier backend,
        // failed when one createIndexes command named several existing indexes; at start-up
        // the extra round trips cost nothing, so no backend is trusted with it.
        for model in [
            index(doc! { "listPage": 1, "listPosition": -1 }, "list_pages"),
            index(
                doc! { "customerEmail": 1, "listPosition": -1 },
                "by_customer_email_position",
            ),
        ] {
            orders.create_index(model).await?;
        }
        let customers = self.collections().customers;
        for model in [
            index(doc! { "listPage": 1, "listPosition": 1 }, "list_pages"),
            index(doc! { summaries::UNLISTED: 1 }, "unlisted"),
        ] {
            customers.create_index(model).await?;
        }
        let summaries = self.collections().summaries;
        for model in [
            index(doc! { "customerEmail": 1 }, "by_customer_email"),
            index(doc! { "listPage": 1 }, "list_pages"),
        ] {
            summaries.create_index(model).await?;
        }
        for retired in RETIRED_INDEXES {
            if let Err(error) = orders.drop_index(retired).await {
                if !matches!(&*error.kind, ErrorKind::Command(failure) if failure.code == INDEX_NOT_FOUND)
                {
                    return Err(error.into());
                }
            }
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.within_read_deadline(async {
            self.database.run_command(doc! { "ping": 1 }).await?;
            Ok(())
        })
        .await
    }

    pub async fn find_order(&self, id: &str) -> Result<Option<OrderDocument>, StoreError> {
        self.within_read_deadline(async {
            Ok(self
                .collections()
                .orders
                .find_one(doc! { "_id": id })
                .await?)
        })
        .await
    }

    /// The customer `email` with the newest version of their summary: the document, and the
    /// versions stored beside it (both found by equality).
    pub async fn find_customer(&self, email: &str) -> Result<Option<CustomerDocument>, StoreError> {
        self.within_read_deadline(self.find_customer_now(email))
            .await
    }

    async fn find_customer_now(&self, email: &str) -> Result<Option<CustomerDocument>, StoreError> {
        let models = self.collections();
        let customer = models
            .customers
            .find_one(doc! { "_id": email })
            .projection(customer_fields())
            .await?;
        let versions: Vec<SummaryVersionDocument> = models
            .summaries
            .find(doc! { "customerEmail": email })
            .await?
            .try_collect()
            .await?;
        let newest = versions
            .iter()
            .max_by_key(|version| version.summary_version);
        Ok(match (customer, newest) {
            (Some(customer), Some(newest)) => Some(customer.with_newer(newest)),
            (Some(customer), None) => Some(customer),
            (None, newest) => newest.map(CustomerDocument::unlisted),
        })
    }

    /// Writes each of `orders` unless the stored copy already reflects its version or a later
    /// one, at most `concurrency` writes at a time, and tells which were written.
    ///
    /// Any stored copy of an order is at its first version or later, so a first version is
    /// written only where there is none, which the unique `_id` index decides on insert: all
    /// of them go in one unordered insert, in which a duplicate key refuses that document
    /// alone. A guarded upsert would look each order up first, and on FerretDB a lookup costs
    /// more than the insert (see docs/local-read-stores.md). Later versions are guarded
    /// upserts, written before the inserts, so that with one write at a time the orders become
    /// readable in the order given.
    ///
    /// A list position is reserved for each first version, and for a later version only when
    /// its upsert inserted it (a cancellation that arrived before its order): the others update
    /// an order that is listed already, and reserving for them would leave gaps in the pages.
    pub async fn write_orders(
        &self,
        orders: &[OrderDocument],
        concurrency: usize,
    ) -> Result<Vec<bool>, StoreError> {
        let models = self.collections();
        let collection = &models.orders;
        let mut written = vec![false; orders.len()];
        let (firsts, later): (Vec<usize>, Vec<usize>) =
            (0..orders.len()).partition(|&i| orders[i].version == FIRST_ORDER_VERSION);
        let upserts: Vec<_> = later
            .into_iter()
            .map(|i| async move {
                let order = &orders[i];
                let result = collection
                    .update_one(
                        doc! { "_id": &order.id, "version": { "$lt": order.version } },
                        doc! { "$set": fields_without_id(order)? },
                    )
                    .upsert(true)
                    .await;
                let inserted = matches!(&result, Ok(update) if update.upserted_id.is_some());
                Ok::<_, StoreError>((i, written_unless_duplicate(result)?, inserted))
            })
            .collect();
        let upserted: Vec<(usize, bool, bool)> = futures::stream::iter(upserts)
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let inserted: Vec<usize> = upserted
            .iter()
            .filter(|(_, _, inserted)| *inserted)
            .map(|(i, _, _)| *i)
            .collect();
        for (i, was_written, _) in upserted {
            written[i] = was_written;
        }
        self.list_inserted_later_versions(&models, orders, &inserted)
            .await?;
        if firsts.is_empty() {
            return Ok(written);
        }
        let positions = self
            .reserve_list_positions(models.orders.name(), firsts.len())
            .await?;
        let listed: Vec<OrderDocument> = firsts
            .iter()
            .zip(positions)
            .map(|(&i, position)| orders[i].clone().listed_at(position))
            .collect();
        let refused = match collection.insert_many(&listed).ordered(false).await {
            Ok(_) => Vec::new(),
            Err(error) => duplicates_only(error)?,
        };
        for (position, &i) in firsts.iter().enumerate() {
            written[i] = !refused.contains(&position);
        }
        Ok(written)
    }

    /// Gives the later versions at `inserted`, which their upserts inserted, list positions.
    async fn list_inserted_later_versions(
        &self,
        models: &ReadModels,
        orders: &[OrderDocument],
        inserted: &[usize],
    ) -> Result<(), StoreError> {
        let positions = self
            .reserve_list_positions(models.orders.name(), inserted.len())
            .await?;
        for (&i, position) in inserted.iter().zip(positions) {
            let listed = orders[i].clone().listed_at(position);
            models
                .orders
                .update_one(
                    doc! { "_id": &listed.id, "listPosition": { "$exists": false } },
                    doc! { "$set": { "listPosition": listed.list_position, "listPage": listed.list_page } },
                )
                .await?;
        }
        Ok(())
    }

    /// The version of order `id` in the read model, if it is there at all.
    pub async fn order_version(&self, id: &str) -> Result<Option<i64>, StoreError> {
        self.within_read_deadline(async {
            let found = self
                .collections()
                .orders
                .clone_with_type::<Document>()
                .find_one(doc! { "_id": id })
                .projection(doc! { "version": 1 })
                .await?;
            Ok(found.and_then(|order| order.get_i64("version").ok()))
        })
        .await
    }
}

/// `operation`, failed as [`StoreError::TimedOut`] if it takes longer than `deadline`.
async fn within<T>(
    deadline: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, operation)
        .await
        .unwrap_or(Err(StoreError::TimedOut(deadline)))
}
