//! Listings that cost what a page costs, however many orders and customers there are.
//!
//! Each order gets a list position when it is first written, and each customer when its
//! summary is first written, from a counter per collection in `listPositions` (one increment
//! per batch), and the page of positions it falls in, `listPage`. A listing reads the counter,
//! then pages of positions one equality lookup at a time (orders newest first, customers in
//! the order they were first seen): MongoDB serves that from the `list_pages` index, FerretDB
//! from the GIN twin of its index (deploy/ferretdb/index-twins.sql); neither sorts or skips
//! over the collection. A page deep in a listing costs what the first one does.

use std::cmp::Reverse;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::summaries::{list_page_of, remember_customer_pages, with_newest_versions, UNLISTED};
use super::{
    customer_fields, Cursor, CustomerDocument, OrderDocument, Page, ReadModels, ReadStore, Start,
    StoreError, SummaryVersionDocument, LIST_PAGE_SPAN, SPARE_PAGE_LOOKUPS,
};

const POSITIONS_COLLECTION: &str = "listPositions";

/// A page of a listing, and where the next page starts if there may be more.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<Start>,
}

/// Where the page after a full `page` of `items` starts: after the last item's cursor, or a
/// page further from the same start when it has none (orders written before list positions).
pub(super) fn full_page_next<T>(
    page: &Page,
    items: &[T],
    cursor: impl Fn(&T) -> Option<Start>,
) -> Option<Start> {
    if items.len() < page.limit as usize {
        return None;
    }
    Some(items.last().and_then(cursor).unwrap_or_else(|| Start {
        after: page.start.after.clone(),
        skip: page.start.skip + u64::from(page.limit),
    }))
}

impl OrderDocument {
    /// The order at list `position`.
    pub(super) fn listed_at(self, position: i64) -> Self {
        Self {
            list_position: Some(position),
            list_page: Some(position.div_euclid(LIST_PAGE_SPAN)),
            ..self
        }
    }
}

impl ReadStore {
    fn list_positions(&self) -> Collection<Document> {
        self.database.collection(POSITIONS_COLLECTION)
    }

    /// Hands out `count` new list positions in the collection named `listed`, in order.
    pub(super) async fn reserve_list_positions(
        &self,
        listed: &str,
        count: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let Ok(count) = i64::try_from(count) else {
            return Ok(Vec::new());
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        let counter = self
            .list_positions()
            .find_one_and_update(doc! { "_id": listed }, doc! { "$inc": { "last": count } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?;
        let last = counter
            .and_then(|counter| counter.get_i64("last").ok())
            .unwrap_or(count);
        Ok((last - count + 1..=last).collect())
    }

    /// The last list position handed out in the collection named `listed`, 0 if none.
    async fn last_list_position(&self, listed: &str) -> Result<i64, StoreError> {
        let counter = self
            .list_positions()
            .find_one(doc! { "_id": listed })
            .await?;
        Ok(counter
            .and_then(|counter| counter.get_i64("last").ok())
            .unwrap_or(0))
    }

    /// Forgets the positions handed out in the collections of `models`, which are dropped.
    pub(super) async fn forget_list_positions(
        &self,
        models: &ReadModels,
    ) -> Result<(), StoreError> {
        for listed in [models.orders.name(), models.customers.name()] {
            self.list_positions()
                .delete_one(doc! { "_id": listed })
                .await?;
        }
        Ok(())
    }

    /// Gives the customers `emails`, whose summaries a write just inserted, their list
    /// positions in that order. The summary's insert marked it unlisted; a customer that
    /// another replica listed first keeps its position.
    pub async fn list_new_customers(&self, emails: &[String]) -> Result<(), StoreError> {
        let models = self.collections();
        let positions = self
            .reserve_list_positions(models.customers.name(), emails.len())
            .await?;
        for (email, position) in emails.iter().zip(positions) {
            let listed = models
                .customers
                .update_one(
                    doc! { "_id": email, UNLISTED: true },
                    doc! {
                        "$set": { "listPosition": position, "listPage": list_page_of(position) },
                        "$unset": { UNLISTED: "" },
                    },
                )
                .await?;
            if listed.modified_count == 1 {
                remember_customer_pages(
                    &models.customer_pages,
                    [(email.clone(), list_page_of(position))],
                );
            }
        }
        Ok(())
    }

    /// Lists the customers a stop left unlisted between their summary's insert and their
    /// position, found by equality on the mark (an index lookup); for start-up.
    pub async fn list_unlisted_customers(&self) -> Result<usize, StoreError> {
        let unlisted: Vec<Document> = self
            .collections()
            .customers
            .clone_with_type::<Document>()
            .find(doc! { UNLISTED: true })
            .projection(doc! { "_id": 1 })
            .await?
            .try_collect()
            .await?;
        let mut emails: Vec<String> = unlisted
            .iter()
            .filter_map(|customer| customer.get_str("_id").ok().map(str::to_owned))
            .collect();
        emails.sort_unstable();
        self.list_new_customers(&emails).await?;
        Ok(emails.len())
    }

    /// Customers in the order they were first seen, a page of positions at a time from the
    /// oldest, and where the next page starts if there may be more.
    pub async fn list_customers(
        &self,
        page: &Page,
    ) -> Result<Listing<CustomerDocument>, StoreError> {
        self.within_read_deadline(self.list_customers_now(page))
            .await
    }

    async fn list_customers_now(
        &self,
        page: &Page,
    ) -> Result<Listing<CustomerDocument>, StoreError> {
        let models = self.collections();
        let limit = page.limit as usize;
        let last_page = self
            .last_list_position(models.customers.name())
            .await?
            .div_euclid(LIST_PAGE_SPAN);
        let cursor = match page.start.after {
            Some(Cursor::Position(position)) => position,
            None => 0,
        };
        // Positions are dense, so skipping customers is skipping positions.
        let after = cursor.saturating_add(i64::try_from(page.start.skip).unwrap_or(i64::MAX));
        let mut found: Vec<CustomerDocument> = Vec::with_capacity(limit);
        let mut list_page = after.saturating_add(1).div_euclid(LIST_PAGE_SPAN);
        let mut lookups_left = limit / LIST_PAGE_SPAN as usize + 1 + SPARE_PAGE_LOOKUPS;
        while found.len() < limit && list_page <= last_page && lookups_left > 0 {
            let customers: Vec<CustomerDocument> = models
                .customers
                .find(doc! { "listPage": list_page })
                .projection(customer_fields())
                .await?
                .try_collect()
                .await?;
            let versions: Vec<SummaryVersionDocument> = models
                .summaries
                .find(doc! { "listPage": list_page })
                .await?
                .try_collect()
                .await?;
            let mut customers = with_newest_versions(customers, versions);
            customers.retain(|customer| customer.list_position.is_some_and(|p| p > after));
            customers.sort_unstable_by_key(|customer| customer.list_position);
            found.extend(customers.into_iter().take(limit - found.len()));
            list_page += 1;
            lookups_left -= 1;
        }
        let next = if found.len() == limit {
            found.last().and_then(|customer| customer.list_position)
        } else if list_page <= last_page {
            // Out of lookups among unwritten positions: the next page starts above the pages
            // read.
            Some(list_page * LIST_PAGE_SPAN - 1)
        } else {
            None
        };
        Ok(Listing {
            items: found,
            next: next.map(|position| Start::after(Cursor::Position(position))),
        })
    }

    /// Orders newest first, optionally only those of one customer, and where the next page
    /// starts if there may be more.
    pub async fn list_orders(
        &self,
        customer_email: Option<&str>,
        page: &Page,
    ) -> Result<Listing<OrderDocument>, StoreError> {
        self.within_read_deadline(self.list_orders_now(customer_email, page))
            .await
    }

    async fn list_orders_now(
        &self,
        customer_email: Option<&str>,
        page: &Page,
    ) -> Result<Listing<OrderDocument>, StoreError> {
        match customer_email {
            None => self.newest_orders(page).await,
            Some(email) => {
                let orders = self.customer_orders(email, page).await?;
                let next = full_page_next(page, &orders, |order| {
                    order
                        .list_position
                        .map(|position| Start::after(Cursor::Position(position)))
                });
                Ok(Listing {
                    items: orders,
                    next,
                })
            }
        }
    }

    /// The listing of every order, read a page of positions at a time from the newest.
    async fn newest_orders(&self, page: &Page) -> Result<Listing<OrderDocument>, StoreError> {
        let models = self.collections();
        let limit = page.limit as usize;
        let next_position = self.last_list_position(models.orders.name()).await? + 1;
        let after = match page.start.after {
            Some(Cursor::Position(position)) => position.min(next_position),
            None => next_position,
        };
        // Positions are dense, so skipping items is skipping positions.
        let before = after.saturating_sub(i64::try_from(page.start.skip).unwrap_or(i64::MAX));
        let mut found: Vec<OrderDocument> = Vec::with_capacity(limit);
        let mut list_page = (before - 1).div_euclid(LIST_PAGE_SPAN);
        let mut lookups_left = limit / LIST_PAGE_SPAN as usize + 1 + SPARE_PAGE_LOOKUPS;
        while found.len() < limit && list_page >= 0 && lookups_left > 0 {
            let mut orders: Vec<OrderDocument> = models
                .orders
                .find(doc! { "listPage": list_page })
                .await?
                .try_collect()
                .await?;
            orders.retain(|order| order.list_position.is_some_and(|p| p < before));
            orders.sort_unstable_by_key(|order| Reverse(order.list_position));
            found.extend(orders.into_iter().take(limit - found.len()));
            list_page -= 1;
            lookups_left -= 1;
        }
        let next = if found.len() == limit {
            found
                .last()
                .and_then(|order| order.list_position)
                .map(|position| Start::after(Cursor::Position(position)))
        } else if list_page >= 0 {
            // Out of lookups among unwritten positions: the next page starts below the
            // pages read.
            Some(Start::after(Cursor::Position(
                (list_page + 1) * LIST_PAGE_SPAN,
            )))
        } else {
            None
        };
        Ok(Listing { items: found, next })
    }

    /// One customer's orders, newest first: found by equality on `customerEmail`, so on
    /// FerretDB the cost grows with that customer's orders, not with all orders.
    async fn customer_orders(
        &self,
        email: &str,
        page: &Page,
    ) -> Result<Vec<OrderDocument>, StoreError> {
        let mut filter = doc! { "customerEmail": email };
        if let Some(Cursor::Position(position)) = page.start.after {
            filter.insert("listPosition", doc! { "$lt": position });
        }
        Ok(self
            .collections()
            .orders
            .find(filter)
            .sort(doc! { "listPosition": -1 })
            .skip(page.start.skip)
            .limit(i64::from(page.limit))
            .await?
            .try_collect()
            .await?)
    }
}
