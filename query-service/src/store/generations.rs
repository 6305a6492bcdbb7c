//! Generations of the read models. Generation 0 is the `orders`, `customerSummaries` and
//! `listPages` collections; generation n > 0 is `orders_g<n>`, `customerSummaries_g<n>` and
//! `listPages_g<n>`. One document in `readModelGenerations`, `{_id: "active", generation: n}`,
//! names the generation that reads and the live projection use, and every replica follows it.
//!
//! A rebuild fills the next generation and then switches that document: a single-document
//! write, so the switch is atomic and reads never see a half-built model. It is also the one
//! way a read model changes: a release that changes what the documents hold is deployed with
//! a rebuild, and nothing is upgraded in place. (Renaming the new collections over the old
//! ones would need `renameCollection` with `dropTarget`, which FerretDB does not implement; a
//! rename in two steps would leave a moment with no collection at all.)

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};

use super::{written_unless_duplicate, ReadStore, StoreError};
use crate::read_models::customers::newest_of_each;
use crate::read_models::{ListPageMarker, Listing, OrderDocument, Summarised, SummaryDocument};

/// Customers whose summaries one lookup completes, when verifying all of them: a page's worth,
/// as a listing's reads do.
const CUSTOMERS_PER_LOOKUP: usize = 64;

const GENERATIONS_COLLECTION: &str = "readModelGenerations";
const ACTIVE: &str = "active";

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
    pub(super) summaries: Collection<SummaryDocument>,
    pub(super) list_pages: Collection<ListPageMarker>,
    /// The last page of each listing this process has found in this generation: pages are
    /// only ever added, so the search for a newer one starts there.
    pub(super) last_pages: Arc<Mutex<HashMap<Listing, i64>>>,
    /// The page markers this process has seen stored in this generation: markers are never
    /// removed, so inserting one again would only be refused.
    pub(super) stored_markers: Arc<Mutex<HashSet<String>>>,
}

impl ReadModels {
    pub(super) fn of(database: &Database, generation: Generation) -> Self {
        Self {
            generation,
            orders: database.collection(&generation.collection_name("orders")),
            summaries: database.collection(&generation.collection_name("customerSummaries")),
            list_pages: database.collection(&generation.collection_name("listPages")),
            last_pages: Arc::default(),
            stored_markers: Arc::default(),
        }
    }

    /// The same collections and caches, reached through `database`'s client.
    pub(super) fn on(&self, database: &Database) -> Self {
        Self {
            generation: self.generation,
            orders: database.collection(self.orders.name()),
            summaries: database.collection(self.summaries.name()),
            list_pages: database.collection(self.list_pages.name()),
            last_pages: Arc::clone(&self.last_pages),
            stored_markers: Arc::clone(&self.stored_markers),
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

    /// Drops the collections of this store's generation.
    pub async fn drop_collections(&self) -> Result<(), StoreError> {
        let models = self.collections();
        models.orders.drop().await?;
        models.summaries.drop().await?;
        models.list_pages.drop().await?;
        Ok(())
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

    /// Every customer's newest summary; for verification after a rebuild.
    pub async fn all_customers(&self) -> Result<Vec<SummaryDocument>, StoreError> {
        let models = self.collections();
        let versions: Vec<SummaryDocument> =
            models.summaries.find(doc! {}).await?.try_collect().await?;
        let length = self.span_length().await?;
        let mut customers: Vec<Summarised> =
            newest_of_each(versions, |customer| customer.list_position)
                .into_iter()
                .map(|customer| Summarised::from(customer, length))
                .collect();
        for chunk in customers.chunks_mut(CUSTOMERS_PER_LOOKUP) {
            self.complete(&models, chunk).await?;
        }
        Ok(customers
            .into_iter()
            .map(|summarised| summarised.customer)
            .collect())
    }
}
