//! Generations of the read models. Generation 0 is the `orders`, `customers` and
//! `customerSummaries` collections; generation n > 0 is `orders_g<n>`, `customers_g<n>` and
//! `customerSummaries_g<n>`. One document in
//! `readModelGenerations`, `{_id: "active", generation: n}`, names the generation that reads
//! and the live projection use, and every replica follows it.
//!
//! A rebuild fills the next generation and then switches that document: a single-document
//! write, so the switch is atomic and reads never see a half-built model.
//!
//! A rebuild is also the one way a read model evolves. Each generation is written whole by
//! one release, and the shape of its documents is recorded beside the pointer,
//! `{_id: "shape of <orders collection>", shape: n}`. A release that changes what the documents
//! hold raises [`CURRENT_SHAPE`]; started on a generation of an older shape it says so at
//! start-up, and `deploy/rebuild` writes a new generation. Nothing is upgraded in place. (Renaming the new
//! collections over the old ones would need `renameCollection` with `dropTarget`, which
//! FerretDB does not implement; a rename in two steps would leave a moment with no
//! collection at all.)

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};

use super::{
    written_unless_duplicate, CustomerDocument, OrderDocument, ReadStore, StoreError,
    SummaryVersionDocument,
};

const GENERATIONS_COLLECTION: &str = "readModelGenerations";
const ACTIVE: &str = "active";

/// The shape of the documents this release writes. 1: every order has `customerEmail` (what
/// email filters use) and a list position (what the newest-first listing reads). 2: every
/// customer has a list position too (what the customer listing reads). A generation written
/// before shapes were recorded is shape 0.
pub const CURRENT_SHAPE: i64 = 2;

/// Which set of read-model collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation(u64);

impl Generation {
    pub const FIRST: Self = Self(0);

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The generation before this one, if any.
    pub fn previous(self) -> Option<Self> {
        self.0.checked_sub(1).map(Self)
    }

    fn collection_name(self, base: &str) -> String {
        match self.0 {
            0 => base.to_owned(),
            n => format!("{base}_g{n}"),
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The collections of one generation.
#[derive(Clone)]
pub struct ReadModels {
    pub generation: Generation,
    pub(super) orders: Collection<OrderDocument>,
    pub(super) customers: Collection<CustomerDocument>,
    pub(super) summaries: Collection<SummaryVersionDocument>,
    /// The list page of customers this process has seen listed in this generation: a
    /// customer's page never changes once given.
    pub(super) customer_pages: Arc<Mutex<HashMap<String, i64>>>,
}

impl ReadModels {
    pub(super) fn of(database: &Database, generation: Generation) -> Self {
        Self {
            generation,
            orders: database.collection(&generation.collection_name("orders")),
            customers: database.collection(&generation.collection_name("customers")),
            summaries: database.collection(&generation.collection_name("customerSummaries")),
            customer_pages: Arc::default(),
        }
    }
}

impl ReadStore {
    fn generations(&self) -> Collection<Document> {
        self.database.collection(GENERATIONS_COLLECTION)
    }

    /// The generation the database names as active; the first one until a rebuild happened.
    pub async fn active_generation(&self) -> Result<Generation, StoreError> {
        let active = self.generations().find_one(doc! { "_id": ACTIVE }).await?;
        Ok(active
            .and_then(|pointer| pointer.get_i64("generation").ok())
            .and_then(|generation| u64::try_from(generation).ok())
            .map_or(Generation::FIRST, Generation))
    }

    /// Moves this store to the active generation if that changed; returns the new one.
    pub async fn follow_active_generation(&self) -> Result<Option<Generation>, StoreError> {
        let active = self.active_generation().await?;
        if active == self.generation() {
            return Ok(None);
        }
        let models = ReadModels::of(&self.database, active);
        match self.models.write() {
            Ok(mut current) => *current = models,
            Err(poisoned) => *poisoned.into_inner() = models,
        }
        Ok(Some(active))
    }

    /// Makes `next` the active generation if `current` still is; false when another switch
    /// got there first.
    pub async fn activate(
        &self,
        current: Generation,
        next: Generation,
    ) -> Result<bool, StoreError> {
        let to_i64 = |generation: Generation| i64::try_from(generation.0).unwrap_or(i64::MAX);
        let filter = if current == Generation::FIRST {
            // Before the first switch the pointer document may not exist yet.
            doc! { "_id": ACTIVE, "generation": { "$in": [0_i64, null] } }
        } else {
            doc! { "_id": ACTIVE, "generation": to_i64(current) }
        };
        let switched = self
            .generations()
            .update_one(filter, doc! { "$set": { "generation": to_i64(next) } })
            .upsert(true)
            .await;
        written_unless_duplicate(switched)
    }

    /// Drops the collections of this store's generation, and the records of their shape and
    /// list positions.
    pub async fn drop_collections(&self) -> Result<(), StoreError> {
        let models = self.collections();
        models.orders.drop().await?;
        models.customers.drop().await?;
        models.summaries.drop().await?;
        self.forget_list_positions(&models).await?;
        self.generations()
            .delete_one(doc! { "_id": shape_id(&models) })
            .await?;
        Ok(())
    }

    /// Records that this store's generation holds documents of [`CURRENT_SHAPE`]: for a
    /// generation this release writes from the start. Replicas may record it together; the
    /// first record stays.
    pub async fn record_shape(&self) -> Result<(), StoreError> {
        let record = doc! { "_id": shape_id(&self.collections()), "shape": CURRENT_SHAPE };
        written_unless_duplicate(self.generations().insert_one(record).await)?;
        Ok(())
    }

    /// The shape of this store's generation: as recorded; [`CURRENT_SHAPE`] for a generation
    /// still without orders, which this release then records as its own; 0 for one written
    /// before shapes were recorded.
    pub async fn shape_on_start(&self) -> Result<i64, StoreError> {
        let models = self.collections();
        let recorded = self
            .generations()
            .find_one(doc! { "_id": shape_id(&models) })
            .await?
            .and_then(|record| record.get_i64("shape").ok());
        if let Some(shape) = recorded {
            return Ok(shape);
        }
        if models.orders.find_one(doc! {}).await?.is_none() {
            self.record_shape().await?;
            return Ok(CURRENT_SHAPE);
        }
        Ok(0)
    }

    /// The id of every order, read in one pass; for verification after a rebuild.
    pub async fn order_ids(&self) -> Result<HashSet<String>, StoreError> {
        let mut ids = HashSet::new();
        let mut cursor = self
            .collections()
            .orders
            .clone_with_type::<Document>()
            .find(doc! {})
            .projection(doc! { "_id": 1 })
            .await?;
        while let Some(order) = cursor.try_next().await? {
            if let Ok(id) = order.get_str("_id") {
                ids.insert(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Every customer summary at its newest version, bookkeeping left out; for verification
    /// after a rebuild.
    pub async fn all_customers(&self) -> Result<Vec<CustomerDocument>, StoreError> {
        let models = self.collections();
        let customers: Vec<CustomerDocument> = models
            .customers
            .find(doc! {})
            .projection(super::customer_fields())
            .await?
            .try_collect()
            .await?;
        let versions: Vec<SummaryVersionDocument> =
            models.summaries.find(doc! {}).await?.try_collect().await?;
        Ok(super::summaries::with_newest_versions(customers, versions))
    }
}

/// The id of the shape record of `models`.
fn shape_id(models: &ReadModels) -> String {
    format!("shape of {}", models.orders.name())
}
