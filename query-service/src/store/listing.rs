//! The listings, read a page of positions at a time by equality (see
//! `crate::read_models::listings`): orders newest first, customers in the order of their
//! first orders, a customer's orders newest first; of everybody, or of one owner. A page deep
//! in a listing costs what the first one does, on every store.

use std::cmp::Reverse;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::{
    lock, Cursor, Page, ReadModels, ReadStore, Start, StoreError, Whose, MAX_REMEMBERED_PAGES,
};
use crate::read_models::customers::{as_of_order, newest_of_each};
use crate::read_models::listings::page_of;
use crate::read_models::orders::{customer_page, owner_page};
use crate::read_models::{
    ListPageMarker, Listing as ListingKind, OrderDocument, Summarised, SummaryDocument,
    SummaryInOrder, LIST_PAGE_SPAN,
};

/// Pages looked at past the last one known, in one lookup, for a newer one: positions a
/// rolled-back transaction took leave a gap, and the command side commits at most 1 000
/// orders in a transaction (`group_commit.max_size`), fewer than this many pages hold.
const LOOKAHEAD_PAGES: i64 = 16;

/// Page lookups one listing request may make beyond those its limit needs, to pass over
/// pages without anything written yet.
const SPARE_PAGE_LOOKUPS: usize = 16;

/// A page of a listing, and where the next page starts if there may be more.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<Start>,
}

/// Which orders a listing of orders holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderListing<'a> {
    /// Everybody's, or one owner's.
    Of(Whose<'a>),
    /// The orders of `owner`'s customer `email`.
    OfCustomer { owner: &'a str, email: &'a str },
}

impl<T> Listing<T> {
    /// A listing with nothing in it.
    fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

impl ReadStore {
    /// The last page of `listing` this process has found, if any: pages are only ever added,
    /// so every page up to it exists.
    fn known_last_page(models: &ReadModels, listing: &ListingKind) -> Option<i64> {
        lock(&models.last_pages).get(listing).copied()
    }

    /// The last page of `listing` that holds anything, if any does: from the last one this
    /// process found, looking ahead by equality on the pages' markers; at the first call, the
    /// newest marker.
    async fn last_list_page(
        &self,
        models: &ReadModels,
        listing: &ListingKind,
    ) -> Result<Option<i64>, StoreError> {
        let mut last = match Self::known_last_page(models, listing) {
            Some(page) => Some(page),
            None => models
                .list_pages
                .find_one(doc! { "listing": listing.name() })
                .sort(doc! { "page": -1 })
                .await?
                .map(|marker| marker.page),
        };
        loop {
            let from = last.map_or(0, |page| page + 1);
            let ahead: Vec<String> = (from..from + LOOKAHEAD_PAGES)
                .map(|page| listing.marker(page).id)
                .collect();
            let found: Vec<ListPageMarker> = models
                .list_pages
                .find(doc! { "_id": { "$in": ahead } })
                .await?
                .try_collect()
                .await?;
            match found.iter().map(|marker| marker.page).max() {
                Some(page) => last = Some(page),
                None => break,
            }
        }
        if let Some(page) = last {
            let mut known = lock(&models.last_pages);
            if known.len() >= MAX_REMEMBERED_PAGES {
                known.clear();
            }
            let entry = known.entry(listing.clone()).or_insert(page);
            *entry = (*entry).max(page);
        }
        Ok(last)
    }

    /// Customers in the order of their first orders, everybody's or one owner's, a page of
    /// positions at a time, and where the next page starts if there may be more; counting the
    /// order `reflecting` (a consistency token's) in its customer's summary.
    pub async fn list_customers(
        &self,
        whose: Whose<'_>,
        page: &Page,
        reflecting: Option<&str>,
    ) -> Result<Listing<SummaryDocument>, StoreError> {
        self.within_read_deadline(async {
            let models = self.collections();
            let reflected = self
                .reflected_order(&models, reflecting)
                .await?
                .filter(|order| whose.sees(&order.owner));
            match whose {
                Whose::Everyone => {
                    self.customers_in_order(
                        &models,
                        page,
                        reflected,
                        ListingKind::Customers,
                        |list_page| doc! { "listPage": list_page },
                        |customer| customer.list_position,
                    )
                    .await
                }
                Whose::Owner(owner) => {
                    self.customers_in_order(
                        &models,
                        page,
                        reflected,
                        ListingKind::CustomersOf(owner.to_owned()),
                        |list_page| doc! { "ownerListPage": owner_page(owner, list_page) },
                        |customer| customer.owner_position,
                    )
                    .await
                }
            }
        })
        .await
    }

    /// A page of `listing`: page `n` of its positions is the customers whose summary
    /// documents `page_filter(n)` finds, each at `position(customer)`, their summaries
    /// completed from their orders and from `reflected`.
    async fn customers_in_order(
        &self,
        models: &ReadModels,
        page: &Page,
        reflected: Option<SummaryInOrder>,
        listing: ListingKind,
        page_filter: impl Fn(i64) -> Document,
        position: impl Fn(&SummaryDocument) -> i64 + Copy,
    ) -> Result<Listing<SummaryDocument>, StoreError> {
        let limit = page.limit as usize;
        // Pages are read upwards, so the pages this process knows of serve an answer that
        // they fill without searching for newer ones; the search is made when they do not.
        let known = Self::known_last_page(models, &listing);
        let mut searched = known.is_none();
        let last = match known {
            Some(page) => Some(page),
            None => self.last_list_page(models, &listing).await?,
        };
        let Some(mut last_page) = last else {
            return Ok(Listing::empty());
        };
        let length = self.span_length().await?;
        let after = match page.start.after {
            Some(Cursor::Position(position)) => position,
            None => 0,
        };
        let mut found: Vec<SummaryDocument> = Vec::with_capacity(limit);
        let mut to_skip = page.start.skip;
        let mut list_page = page_of(after.saturating_add(1));
        let mut lookups_left = pages_for(limit, to_skip);
        loop {
            while found.len() < limit && list_page <= last_page && lookups_left > 0 {
                let mut versions: Vec<SummaryDocument> = models
                    .summaries
                    .find(page_filter(list_page))
                    .await?
                    .try_collect()
                    .await?;
                // The token's customer, even before their first summary document is applied.
                versions.extend(
                    reflected
                        .as_ref()
                        .map(|order| as_of_order(order, length))
                        .filter(|customer| page_of(position(customer)) == list_page),
                );
                let customers = newest_of_each(versions, position)
                    .into_iter()
                    .filter(|customer| position(customer) > after);
                take_after_skipping(&mut found, customers, &mut to_skip, limit);
                list_page += 1;
                lookups_left -= 1;
            }
            if searched || found.len() == limit || list_page <= last_page {
                break;
            }
            searched = true;
            match self.last_list_page(models, &listing).await? {
                Some(newer) if newer > last_page => last_page = newer,
                _ => break,
            }
        }
        let next = if found.len() == limit {
            found.last().map(position)
        } else if list_page <= last_page {
            // Out of lookups: the next page starts above the pages read.
            Some(list_page * LIST_PAGE_SPAN - 1)
        } else {
            None
        };
        // Only the customers answered are completed from their orders, all at once (the
        // token's order is among the versions above already, where its customer is listed).
        let mut customers: Vec<Summarised> = found
            .into_iter()
            .map(|customer| Summarised::from(customer, length))
            .collect();
        self.complete(models, &mut customers).await?;
        Ok(Listing {
            items: customers
                .into_iter()
                .map(|summarised| summarised.customer)
                .collect(),
            next: next.map(|position| Start {
                after: Some(Cursor::Position(position)),
                skip: to_skip,
            }),
        })
    }

    /// Orders newest first, of everybody, of one owner or of one customer, and where the next
    /// page starts if there may be more.
    pub async fn list_orders(
        &self,
        listing: OrderListing<'_>,
        page: &Page,
        reflecting: Option<&str>,
    ) -> Result<Listing<OrderDocument>, StoreError> {
        self.within_read_deadline(async {
            match listing {
                OrderListing::Of(Whose::Everyone) => {
                    self.newest_orders(
                        page,
                        ListingKind::Orders,
                        |list_page| doc! { "listPage": list_page },
                        |order| order.list_position,
                    )
                    .await
                }
                OrderListing::Of(Whose::Owner(owner)) => {
                    self.newest_orders(
                        page,
                        ListingKind::OrdersOf(owner.to_owned()),
                        |list_page| doc! { "ownerListPage": owner_page(owner, list_page) },
                        |order| order.owner_position,
                    )
                    .await
                }
                OrderListing::OfCustomer { owner, email } => Ok(self
                    .customer_orders(owner, email, page, reflecting)
                    .await?
                    .unwrap_or_else(Listing::empty)),
            }
        })
        .await
    }

    /// The orders of `listing`, a page of positions at a time from the newest.
    async fn newest_orders(
        &self,
        page: &Page,
        listing: ListingKind,
        page_filter: impl Fn(i64) -> Document,
        position: impl Fn(&OrderDocument) -> i64,
    ) -> Result<Listing<OrderDocument>, StoreError> {
        let models = self.collections();
        let Some(last_page) = self.last_list_page(&models, &listing).await? else {
            return Ok(Listing::empty());
        };
        self.orders_newest_first(&models, page, last_page, page_filter, position)
            .await
    }

    /// The orders of `owner`'s customer `email` newest first, or `None` if there is no such
    /// customer; the order `reflecting` (a consistency token's) among them if it is theirs.
    pub async fn list_customer_orders(
        &self,
        owner: &str,
        email: &str,
        page: &Page,
        reflecting: Option<&str>,
    ) -> Result<Option<Listing<OrderDocument>>, StoreError> {
        self.within_read_deadline(self.customer_orders(owner, email, page, reflecting))
            .await
    }

    /// The orders of `owner`'s customer `email`, a page of their orders at a time from their
    /// newest: their newest summary says how many they placed (`None`: no summary, no
    /// customer).
    async fn customer_orders(
        &self,
        owner: &str,
        email: &str,
        page: &Page,
        reflecting: Option<&str>,
    ) -> Result<Option<Listing<OrderDocument>>, StoreError> {
        let models = self.collections();
        let Some(customer) = self.find_customer_now(owner, email, reflecting).await? else {
            return Ok(None);
        };
        self.orders_newest_first(
            &models,
            page,
            page_of(customer.summary.placed_order_count),
            |page_number| doc! { "customerPage": customer_page(owner, email, page_number) },
            |order| order.customer_order,
        )
        .await
        .map(Some)
    }

    /// A page of a newest-first listing of orders: page `n` of its positions is the orders
    /// `page_filter(n)` finds, each at `position(order)`; pages are read from `last_page` down.
    async fn orders_newest_first(
        &self,
        models: &ReadModels,
        page: &Page,
        last_page: i64,
        page_filter: impl Fn(i64) -> Document,
        position: impl Fn(&OrderDocument) -> i64,
    ) -> Result<Listing<OrderDocument>, StoreError> {
        let limit = page.limit as usize;
        let before = match page.start.after {
            Some(Cursor::Position(after)) => after,
            None => i64::MAX,
        };
        let mut found: Vec<OrderDocument> = Vec::with_capacity(limit);
        let mut to_skip = page.start.skip;
        let mut list_page = last_page.min(page_of(before.saturating_sub(1)));
        let mut lookups_left = pages_for(limit, to_skip);
        while found.len() < limit && list_page >= 0 && lookups_left > 0 {
            let mut orders: Vec<OrderDocument> = models
                .orders
                .find(page_filter(list_page))
                .await?
                .try_collect()
                .await?;
            orders.retain(|order| position(order) < before);
            orders.sort_unstable_by_key(|order| Reverse(position(order)));
            take_after_skipping(&mut found, orders, &mut to_skip, limit);
            list_page -= 1;
            lookups_left -= 1;
        }
        let next = if found.len() == limit {
            found.last().map(&position)
        } else if list_page >= 0 {
            // Out of lookups: the next page starts below the pages read.
            Some((list_page + 1) * LIST_PAGE_SPAN)
        } else {
            None
        };
        Ok(Listing {
            items: found,
            next: next.map(|position| Start {
                after: Some(Cursor::Position(position)),
                skip: to_skip,
            }),
        })
    }
}

/// The page lookups a page of `limit` items after skipping `skip` may take.
fn pages_for(limit: usize, skip: u64) -> usize {
    let items = limit.saturating_add(usize::try_from(skip).unwrap_or(usize::MAX));
    items / LIST_PAGE_SPAN as usize + 1 + SPARE_PAGE_LOOKUPS
}

/// Adds `items` to `found`, up to `limit`, after passing over `to_skip` of them.
fn take_after_skipping<T>(
    found: &mut Vec<T>,
    items: impl IntoIterator<Item = T>,
    to_skip: &mut u64,
    limit: usize,
) {
    for item in items {
        if *to_skip > 0 {
            *to_skip -= 1;
        } else if found.len() < limit {
            found.push(item);
        }
    }
}
