//! The read models in MongoDB (or any server speaking its wire protocol: secantusd-rs,
//! FerretDB). The store executes the writes the read models' fold rules decide
//! (`crate::read_models`) and serves the reads; it decides nothing about what an event means.
//! Only unordered inserts, single-document updates and the compactions' deletes of superseded
//! summary versions are used: no transactions, no change streams, no read before a write.
//!
//! The read models come in generations, so that a rebuild can fill fresh collections while
//! the live ones keep serving and then take over in one atomic step (see [`generations`]).

mod generations;
mod listing;
mod summaries;

pub use generations::{Generation, ReadModels};
pub use listing::{Listing, OrderListing};
pub use summaries::KeyLookups;
use summaries::ServerKind;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, InsertManyError, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::config::MongoSettings;
use crate::read_models::{Compaction, ListPageMarker, OrderDocument, Writes};

const DUPLICATE_KEY: i32 = 11000;

/// Errors of the read store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the read database is unavailable: {0}")]
    Unavailable(#[source] mongodb::error::Error),
    #[error("a read-database operation failed: {0}")]
    Operation(#[source] mongodb::error::Error),
    #[error("the read database did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("the read database refused a write: {0}")]
    Refused(String),
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

/// The document's fields for a `$set`; `_id` is left out, the filter supplies it on insert.
fn fields_without_id<T: Serialize>(document: &T) -> Result<Document, StoreError> {
    let mut fields = mongodb::bson::to_document(document)
        .map_err(|error| StoreError::Operation(error.into()))?;
    fields.remove("_id");
    Ok(fields)
}

/// Whether a write that a duplicate `_id` may refuse wrote. A refusal is an answer, not an
/// error: a guarded upsert whose guard is false for the stored document tries to insert a
/// second one and collides.
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

/// Inserts `documents` in one unordered insert, in which a duplicate key refuses that
/// document alone; which of them were inserted.
async fn insert_all<T: Serialize + Send + Sync>(
    collection: &Collection<T>,
    documents: &[T],
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = vec![true; documents.len()];
    if documents.is_empty() {
        return Ok(inserted);
    }
    if let Err(error) = collection.insert_many(documents).ordered(false).await {
        match &*error.kind {
            ErrorKind::InsertMany(InsertManyError {
                write_errors: Some(write_errors),
                write_concern_error: None,
                ..
            }) if write_errors.iter().all(|write| write.code == DUPLICATE_KEY) => {
                for write in write_errors {
                    if let Some(refused) = inserted.get_mut(write.index) {
                        *refused = false;
                    }
                }
            }
            _ => return Err(error.into()),
        }
    }
    Ok(inserted)
}

/// What [`ReadStore::write`] did with a batch's writes.
#[derive(Debug)]
pub struct Written {
    /// For each order of the batch's writes (inserts, then replacements), whether its write
    /// changed the stored order.
    pub orders: Vec<bool>,
    /// The batch's compactions, not made yet.
    pub compactions: PendingCompactions,
}

/// A written batch's compactions, in the collection its summary versions went to (the
/// active generation may change before they run).
#[derive(Debug)]
pub struct PendingCompactions {
    summaries: String,
    customers: Vec<Compaction>,
}

/// Whose orders and customers a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose<'a> {
    /// Every owner's.
    Everyone,
    /// One owner's.
    Owner(&'a str),
}

impl Whose<'_> {
    /// Whether what `owner` owns is seen.
    pub fn sees(self, owner: &str) -> bool {
        match self {
            Self::Everyone => true,
            Self::Owner(seen) => seen == owner,
        }
    }
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
    /// The order or customer at this position of the listing.
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

/// Handle to the read models; cheap to clone. It follows the active generation, or stays on
/// one generation when made by [`ReadStore::pinned`].
#[derive(Clone)]
pub struct ReadStore {
    database: Database,
    /// What `database`'s client was made with, for [`ReadStore::on_this_runtime`].
    client_options: ClientOptions,
    models: Arc<RwLock<ReadModels>>,
    deadlines: Deadlines,
    /// Learnt from the server on the first read or write that needs it.
    server_kind: Arc<OnceCell<ServerKind>>,
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
        let database = Client::with_options(options.clone())?.database(&settings.database);
        let models = ReadModels::of(&database, Generation::FIRST);
        Ok(Self {
            database,
            client_options: options,
            models: Arc::new(RwLock::new(models)),
            deadlines: Deadlines {
                read: settings.read_timeout(),
                batch: settings.batch_timeout(),
            },
            server_kind: Arc::default(),
        })
    }

    /// A store on `generation`'s collections that never moves to another: for writing a new
    /// generation.
    pub fn pinned(&self, generation: Generation) -> Self {
        Self {
            database: self.database.clone(),
            client_options: self.client_options.clone(),
            models: Arc::new(RwLock::new(ReadModels::of(&self.database, generation))),
            deadlines: self.deadlines,
            server_kind: Arc::clone(&self.server_kind),
        }
    }

    /// This store through a client of its own, made on the runtime this is called on: an HTTP
    /// worker's. A client's connections and pool run on the runtime that made it, so a worker
    /// reading through the main runtime's client handed every read from thread to thread (the
    /// pool's check-out, each socket's readiness). It follows the same generation and shares
    /// its caches.
    pub fn on_this_runtime(&self) -> Result<Self, StoreError> {
        let client = Client::with_options(self.client_options.clone())?;
        Ok(Self {
            database: client.database(self.database.name()),
            client_options: self.client_options.clone(),
            models: Arc::clone(&self.models),
            deadlines: self.deadlines,
            server_kind: Arc::clone(&self.server_kind),
        })
    }

    /// Ends the client's sessions and closes its connections, within the read deadline, once
    /// nothing uses the store any more. A process that exits calls it first: the last handle
    /// dropped would end them in a task of its own, which races the runtime's shutdown, and the
    /// driver panics when its pool's task is gone first.
    pub async fn shutdown(self) {
        let shutdown = self.database.client().clone().shutdown();
        if tokio::time::timeout(self.deadlines.read, shutdown)
            .await
            .is_err()
        {
            log::warn!("the read database did not end the client's sessions in time");
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

    /// The collections reads and writes go to now, through this store's client.
    fn collections(&self) -> ReadModels {
        match self.models.read() {
            Ok(models) => models.on(&self.database),
            Err(poisoned) => poisoned.into_inner().on(&self.database),
        }
    }

    pub fn generation(&self) -> Generation {
        self.collections().generation
    }

    /// Creates every index of the active generation's collections: those its writes look
    /// documents up by and those its reads do (see docs/read-models.md); safe to run on every
    /// start.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        self.ensure_write_indexes().await?;
        self.ensure_read_indexes(|_| ()).await
    }

    /// The indexes the projection's own writes look documents up by: a compaction's delete
    /// (`followingSpan` where one query serves many keys, `customerKey` elsewhere).
    pub async fn ensure_write_indexes(&self) -> Result<(), StoreError> {
        let models = self.collections();
        models
            .summaries
            .create_index(named_index(doc! { "customerKey": 1 }, "by_customer"))
            .await?;
        // Only the compaction of a store that deletes by `$in` looks documents up by it.
        if self.key_lookups().await? == KeyLookups::ManyPerQuery {
            models
                .summaries
                .create_index(named_index(doc! { "followingSpan": 1 }, "following_spans"))
                .await?;
        }
        Ok(())
    }

    /// The indexes only reads look documents up by, each an equality lookup, reporting each
    /// one as it is built. A rebuild builds them after its replay: over a whole collection,
    /// an index is built in one sorted pass instead of growing with every insert.
    pub async fn ensure_read_indexes(
        &self,
        mut built: impl FnMut(IndexBuilt),
    ) -> Result<(), StoreError> {
        let models = self.collections();
        let orders = models.orders.clone_with_type::<Document>();
        let summaries = models.summaries.clone_with_type::<Document>();
        let list_pages = models.list_pages.clone_with_type::<Document>();
        let indexes = [
            (&orders, doc! { "listPage": 1 }, "list_pages"),
            (&orders, doc! { "ownerListPage": 1 }, "owner_list_pages"),
            (&orders, doc! { "customerPage": 1 }, "customer_pages"),
            (&orders, doc! { "customerSpan": 1 }, "customer_spans"),
            (&summaries, doc! { "listPage": 1 }, "list_pages"),
            (&summaries, doc! { "ownerListPage": 1 }, "owner_list_pages"),
            (
                &list_pages,
                doc! { "listing": 1, "page": -1 },
                "last_page_first",
            ),
        ];
        // One index per command, so that two are built at once and each is reported as it is.
        let mut builds = futures::stream::iter(indexes.into_iter().map(
            |(collection, keys, name)| async move {
                let started = Instant::now();
                collection.create_index(named_index(keys, name)).await?;
                Ok::<_, StoreError>(IndexBuilt {
                    collection: collection.name().to_owned(),
                    index: name,
                    took: started.elapsed(),
                })
            },
        ))
        .buffer_unordered(INDEX_BUILDS_AT_ONCE);
        while let Some(index) = builds.try_next().await? {
            built(index);
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

    /// Makes `writes`, the writes of one batch, in the order that keeps reads consistent:
    /// summaries and page markers, then the replaced orders, then the new ones, so that an
    /// order readable means the writes of its batch before it are done. Tells, for each order
    /// of `writes.orders` (inserts, then replacements), whether its write changed the stored
    /// order, and leaves the batch's compactions for [`ReadStore::compact`].
    ///
    /// No update of many documents in one command: FerretDB 1.24 hangs on bulk updates (see
    /// docs/local-read-stores.md).
    pub async fn write(&self, writes: &Writes, concurrency: usize) -> Result<Written, StoreError> {
        let models = self.collections();
        insert_all(&models.summaries, &writes.customers.versions).await?;
        let new_markers: Vec<ListPageMarker> = {
            let mut stored = lock(&models.stored_markers);
            if stored.len() >= MAX_REMEMBERED_PAGES {
                stored.clear();
            }
            writes
                .list_pages
                .iter()
                .filter(|marker| !stored.contains(&marker.id))
                .cloned()
                .collect()
        };
        insert_all(&models.list_pages, &new_markers).await?;
        lock(&models.stored_markers).extend(new_markers.into_iter().map(|marker| marker.id));
        let replacements: Vec<_> = writes
            .orders
            .replacements
            .iter()
            .map(|order| self.replace_older(&models.orders, order))
            .collect();
        let replaced: Vec<bool> = futures::stream::iter(replacements)
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        let mut orders = insert_all(&models.orders, &writes.orders.inserts).await?;
        orders.extend(replaced);
        Ok(Written {
            orders,
            compactions: PendingCompactions {
                summaries: models.summaries.name().to_owned(),
                customers: writes.customers.compactions.clone(),
            },
        })
    }

    /// Deletes the summary documents that a written batch's compactions supersede, in one
    /// `delete` command shaped for the server ([`KeyLookups`]), failed as
    /// [`StoreError::TimedOut`] past the batch deadline.
    pub async fn compact(&self, pending: &PendingCompactions) -> Result<(), StoreError> {
        if pending.customers.is_empty() {
            return Ok(());
        }
        self.within_batch_deadline(self.delete_older_versions(pending))
            .await
    }

    /// On a server that serves many keys in one query, every compaction of the batch as one
    /// statement, `$in` of the spans their documents precede (`followingSpan`): secantusd-rs
    /// commits each statement of a `delete` on its own, with a log flush under
    /// `--sync-on-commit`. On FerretDB, which would read the whole collection for it, one
    /// statement per customer by equality on `customerKey`, at its sparse compaction points
    /// only.
    async fn delete_older_versions(&self, pending: &PendingCompactions) -> Result<(), StoreError> {
        let deletes: Vec<Document> = match self.key_lookups().await? {
            KeyLookups::ManyPerQuery => {
                let spans: Vec<String> = pending
                    .customers
                    .iter()
                    .flat_map(Compaction::superseded_spans)
                    .collect();
                vec![doc! { "q": { "followingSpan": { "$in": spans } }, "limit": 0 }]
            }
            KeyLookups::OneEach => pending
                .customers
                .iter()
                .filter(|compaction| compaction.at_sparse_point)
                .map(|compaction| {
                    doc! {
                        "q": {
                            "customerKey": &compaction.customer_key,
                            "summary.version": { "$lt": compaction.below_version },
                        },
                        "limit": 0,
                    }
                })
                .collect(),
        };
        if deletes.is_empty() {
            return Ok(());
        }
        let answer = self
            .database
            .run_command(doc! {
                "delete": &pending.summaries,
                "deletes": deletes,
                "ordered": false,
            })
            .await?;
        match answer.get_array("writeErrors") {
            Ok(errors) if !errors.is_empty() => Err(StoreError::Refused(format!(
                "deleting older summary documents: {errors:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// Writes `order` over the stored copy if that is at an older version, or inserts it if
    /// there is none; whether it wrote.
    ///
    /// A duplicate key on the upsert means the order was there when the insert was tried, at
    /// its version or a newer one, or inserted (by another batch or replica) between the
    /// server's match and its insert. Then the same guarded update without the upsert settles
    /// it: the order exists now, and a stored version only grows.
    async fn replace_older(
        &self,
        orders: &Collection<OrderDocument>,
        order: &OrderDocument,
    ) -> Result<bool, StoreError> {
        let older = doc! { "_id": &order.id, "version": { "$lt": order.version } };
        let fields = doc! { "$set": fields_without_id(order)? };
        let upserted = orders
            .update_one(older.clone(), fields.clone())
            .upsert(true)
            .await;
        if written_unless_duplicate(upserted)? {
            return Ok(true);
        }
        let updated = orders.update_one(older, fields).await?;
        Ok(updated.matched_count > 0)
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

fn named_index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

/// Index builds [`ReadStore::ensure_read_indexes`] runs at once: a build keeps one of the
/// server's cores busy (docs/performance.md).
const INDEX_BUILDS_AT_ONCE: usize = 2;

/// One index [`ReadStore::ensure_read_indexes`] made sure of, and how long that took.
#[derive(Debug, Clone)]
pub struct IndexBuilt {
    pub collection: String,
    pub index: &'static str,
    pub took: Duration,
}

/// The pages a process remembers of a generation, at most, in each of its two memories (last
/// pages of listings, stored markers): past it, a memory starts again (the next reads look the
/// pages up), so that many owners' listings cannot grow it without bound.
const MAX_REMEMBERED_PAGES: usize = 100_000;

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
