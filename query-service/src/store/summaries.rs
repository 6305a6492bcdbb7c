//! Customers' summaries as reads return them: the newest summary document of each customer,
//! completed from the documents of the orders placed after it (see
//! `crate::read_models::customers`).

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::doc;
use mongodb::Collection;

use super::{ReadModels, ReadStore, StoreError};
use crate::read_models::customers::{as_of_order, customer_key};
use crate::read_models::{SpanLength, Summarised, SummaryDocument, SummaryInOrder};

/// How a read of the documents under many keys is put to the server: the cheapest shape
/// differs by server (docs/local-read-stores.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookups {
    /// Many keys in a query with `$in`, which secantusd-rs and mongod serve from the index.
    ManyPerQuery,
    /// One query per key, a few at a time: FerretDB pushes no `$in` down to PostgreSQL and
    /// would read the whole collection for it, while it serves each equality from its index.
    OneEach,
}

/// Which kind of server the read store is, where the cheapest shape of a read or of the read
/// models differs (docs/local-read-stores.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerKind {
    FerretDb,
    /// MongoDB's own storage engine: mongod, secantusd-rs.
    WiredTiger,
}

/// The most orders `spans` spans of `length` hold.
fn span_orders(spans: usize, length: SpanLength) -> u32 {
    u32::try_from(spans)
        .unwrap_or(u32::MAX)
        .saturating_mul(u32::try_from(length.orders()).unwrap_or(u32::MAX))
}

/// Queries the spans of many customers are split between, where one query serves many keys.
const SPAN_QUERIES: usize = 2;

/// Queries in flight at once when each key is looked up alone.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// The orders as [`SummaryInOrder`]s: whole documents are fetched (a projection cost
/// secantusd-rs more than it saved), only those fields decoded.
fn summaries_in(models: &ReadModels) -> Collection<SummaryInOrder> {
    models.orders.clone_with_type()
}

impl ReadStore {
    /// FerretDB when the server's `buildInfo` names a `ferretdbVersion`, learnt once.
    async fn server_kind(&self) -> Result<ServerKind, StoreError> {
        let kind = self
            .server_kind
            .get_or_try_init(|| async {
                let build = self.database.run_command(doc! { "buildInfo": 1 }).await?;
                Ok::<_, StoreError>(if build.contains_key("ferretdbVersion") {
                    ServerKind::FerretDb
                } else {
                    ServerKind::WiredTiger
                })
            })
            .await?;
        Ok(*kind)
    }

    /// The shape of this server's lookups of many keys: one each on FerretDB, many per query
    /// on every other.
    pub async fn key_lookups(&self) -> Result<KeyLookups, StoreError> {
        Ok(match self.server_kind().await? {
            ServerKind::FerretDb => KeyLookups::OneEach,
            ServerKind::WiredTiger => KeyLookups::ManyPerQuery,
        })
    }

    /// The length of the spans of customers' orders in this server's read models: long on
    /// FerretDB, where each summary document costs about as much CPU as an order's insert,
    /// short on every other, where it costs little and halves the orders a customer read
    /// fetches (docs/performance.md).
    pub async fn span_length(&self) -> Result<SpanLength, StoreError> {
        Ok(match self.server_kind().await? {
            ServerKind::FerretDb => SpanLength::LONG,
            ServerKind::WiredTiger => SpanLength::SHORT,
        })
    }

    /// The newest summary of `owner`'s customer `email`, counting the order `reflecting` (a
    /// consistency token's, whose version the read model holds) if it is theirs.
    pub async fn find_customer(
        &self,
        owner: &str,
        email: &str,
        reflecting: Option<&str>,
    ) -> Result<Option<SummaryDocument>, StoreError> {
        self.within_read_deadline(self.find_customer_now(owner, email, reflecting))
            .await
    }

    pub(super) async fn find_customer_now(
        &self,
        owner: &str,
        email: &str,
        reflecting: Option<&str>,
    ) -> Result<Option<SummaryDocument>, StoreError> {
        let models = self.collections();
        let key = customer_key(owner, email);
        let stored: Vec<SummaryDocument> = models
            .summaries
            .find(doc! { "customerKey": &key })
            .await?
            .try_collect()
            .await?;
        let newest = stored
            .into_iter()
            .max_by_key(|version| version.summary.version);
        let reflected = self
            .reflected_order(&models, reflecting)
            .await?
            .filter(|order| customer_key(&order.owner, &order.customer_email) == key);
        let length = self.span_length().await?;
        let mut summarised = match (newest, &reflected) {
            (Some(newest), _) => Summarised::from(newest, length),
            (None, Some(order)) => Summarised::from(as_of_order(order, length), length),
            (None, None) => return Ok(None),
        };
        if let Some(order) = &reflected {
            summarised.take_order(order);
        }
        let mut customers = [summarised];
        self.complete(&models, &mut customers).await?;
        let [summarised] = customers;
        Ok(Some(summarised.customer))
    }

    /// What the order `id` carries of its customer, when a read must count it.
    pub(super) async fn reflected_order(
        &self,
        models: &ReadModels,
        id: Option<&str>,
    ) -> Result<Option<SummaryInOrder>, StoreError> {
        match id {
            Some(id) => Ok(summaries_in(models).find_one(doc! { "_id": id }).await?),
            None => Ok(None),
        }
    }

    /// Completes each of `customers` from the spans of orders after their newest summary,
    /// all customers' next spans in one lookup at a time.
    pub(super) async fn complete(
        &self,
        models: &ReadModels,
        customers: &mut [Summarised],
    ) -> Result<(), StoreError> {
        loop {
            let keys: Vec<String> = customers
                .iter()
                .filter_map(Summarised::next_span_key)
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            let orders = self.orders_of_spans(models, keys).await?;
            let mut by_span: HashMap<&str, Vec<&SummaryInOrder>> = HashMap::new();
            for order in &orders {
                by_span
                    .entry(order.customer_span.as_str())
                    .or_default()
                    .push(order);
            }
            for customer in customers.iter_mut() {
                if let Some(key) = customer.next_span_key() {
                    let in_span = by_span.get(key.as_str()).into_iter().flatten().copied();
                    customer.take_span(in_span);
                }
            }
        }
    }

    async fn orders_of_spans(
        &self,
        models: &ReadModels,
        keys: Vec<String>,
    ) -> Result<Vec<SummaryInOrder>, StoreError> {
        let orders = summaries_in(models);
        match self.key_lookups().await? {
            KeyLookups::ManyPerQuery => {
                let length = self.span_length().await?;
                // A server answers a query on one thread: the keys are split between queries
                // made at once, which an idle server answers on as many cores.
                let keys_per_query = keys.len().div_ceil(SPAN_QUERIES).max(1);
                let lookups = keys.chunks(keys_per_query).map(|keys| {
                    let orders = &orders;
                    async move {
                        orders
                            .find(doc! { "customerSpan": { "$in": keys } })
                            // Every order of the spans in the first reply: past MongoDB's
                            // default of 101 documents, each further batch would be a round
                            // trip of its own.
                            .batch_size(span_orders(keys.len(), length))
                            .await?
                            .try_collect::<Vec<SummaryInOrder>>()
                            .await
                    }
                });
                let found = futures::future::try_join_all(lookups).await?;
                Ok(found.into_iter().flatten().collect())
            }
            KeyLookups::OneEach => {
                let lookups = keys.into_iter().map(|key| {
                    let orders = &orders;
                    async move {
                        orders
                            .find(doc! { "customerSpan": key })
                            .await?
                            .try_collect::<Vec<SummaryInOrder>>()
                            .await
                    }
                });
                let found: Vec<Vec<SummaryInOrder>> = futures::stream::iter(lookups)
                    .buffer_unordered(LOOKUPS_IN_FLIGHT)
                    .try_collect()
                    .await?;
                Ok(found.into_iter().flatten().collect())
            }
        }
    }
}
