//! The listings' pages: which pages of positions hold anything.
//!
//! Orders and customers carry their positions in the listings of everything and of their
//! owner (see `shared_events::ListPositions` and `OwnerPositions`), and a listing reads a page
//! of [`LIST_PAGE_SPAN`] positions by equality on its page, so a page deep in a listing costs
//! what the first one does, on every store. To start from its newest page, an order listing
//! must know which that is: every page that holds an order or a customer has a marker in
//! `listPages`, `{_id: "<listing>/<page>"}`, inserted by the batch that fills the page first
//! (a duplicate is refused, so every replica may insert it). The store finds the last page
//! from markers by equality too (`ReadStore::last_list_page`).
//!
//! Positions may have gaps (a transaction that took some rolled back), and so a page may be
//! short, or, after a gap of a whole page, missing: the readers step over both.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{key, NumberedEvent};

/// Positions per page: one equality lookup reads at most this many orders or customers.
pub const LIST_PAGE_SPAN: i64 = 64;

/// The page of list `position`.
pub fn page_of(position: i64) -> i64 {
    position.div_euclid(LIST_PAGE_SPAN)
}

/// The listings that have page markers: of everything, and of one owner's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Listing {
    Orders,
    Customers,
    OrdersOf(String),
    CustomersOf(String),
}

impl Listing {
    /// The name its markers carry, unique to it.
    pub fn name(&self) -> String {
        match self {
            Self::Orders => "orders".to_owned(),
            Self::Customers => "customers".to_owned(),
            Self::OrdersOf(owner) => key(&["orders-of", owner]),
            Self::CustomersOf(owner) => key(&["customers-of", owner]),
        }
    }

    /// The marker of `page` of this listing. A page number has no `/`, so the name and the
    /// page read back from the id.
    pub fn marker(&self, page: i64) -> ListPageMarker {
        let listing = self.name();
        ListPageMarker {
            id: format!("{listing}/{page}"),
            listing,
            page,
        }
    }
}

/// A page of a listing that holds something: `{_id: "<listing>/<page>", listing, page}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListPageMarker {
    #[serde(rename = "_id")]
    pub id: String,
    pub listing: String,
    pub page: i64,
}

/// The markers of the pages `batch` puts orders and customers in, each once.
pub fn writes(batch: &[NumberedEvent]) -> Vec<ListPageMarker> {
    let page = |position: u64| page_of(i64::try_from(position).unwrap_or(i64::MAX));
    let pages: BTreeSet<(Listing, i64)> = batch
        .iter()
        .flat_map(|event| {
            let owner = event.envelope.payload.owner();
            [
                (Listing::Orders, page(event.positions.order)),
                (Listing::Customers, page(event.positions.customer)),
                (
                    Listing::OrdersOf(owner.to_owned()),
                    page(event.owner_positions.order),
                ),
                (
                    Listing::CustomersOf(owner.to_owned()),
                    page(event.owner_positions.customer),
                ),
            ]
        })
        .collect();
    pages
        .into_iter()
        .map(|(listing, page)| listing.marker(page))
        .collect()
}

#[cfg(test)]
mod tests {
    use shared_events::OwnerPositions;

    use super::*;
    use crate::read_models::tests::{owned_by, placed};

    #[test]
    fn a_batch_marks_each_page_it_fills_once() {
        let mut second_customer = placed("bob@example.com", 1, 64);
        second_customer.positions.customer = 2;
        let alices = owned_by(
            placed("cy@example.com", 1, 65),
            "alice",
            OwnerPositions {
                order: 1,
                customer: 1,
            },
        );

        let markers = writes(&[
            placed("ada@example.com", 1, 1),
            placed("ada@example.com", 1, 63),
            second_customer,
            alices,
        ]);

        let ids: Vec<&str> = markers.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "orders/0",
                "orders/1",
                "customers/0",
                "orders-of//0",
                "orders-of//1",
                "orders-of/alice/0",
                "customers-of//0",
                "customers-of/alice/0",
            ]
        );
    }
}
