//! The listings' pages: which pages of positions hold anything.
//!
//! Orders and customers carry their list positions (see `shared_events::ListPositions`), and a
//! listing reads a page of [`LIST_PAGE_SPAN`] positions by equality on its page number, so a
//! page deep in a listing costs what the first one does, on every store. To start from its
//! newest page, the order listing must know which that is: every page that holds an order or
//! a customer has a marker in `listPages`, `{_id: "<listing>/<page>"}`, inserted by the batch
//! that fills the page first (a duplicate is refused, so every replica may insert it). The
//! store finds the last page from markers by equality too (`ReadStore::last_list_page`).
//!
//! Positions may have gaps (a transaction that took some rolled back), and so a page may be
//! short, or, after a gap of a whole page, missing: the readers step over both.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::NumberedEvent;

/// Positions per page: one equality lookup reads at most this many orders or customers.
pub const LIST_PAGE_SPAN: i64 = 64;

/// The page of list `position`.
pub fn page_of(position: i64) -> i64 {
    position.div_euclid(LIST_PAGE_SPAN)
}

/// The listings that have page markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Listing {
    Orders,
    Customers,
}

impl Listing {
    pub fn name(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Customers => "customers",
        }
    }

    /// The marker of `page` of this listing.
    pub fn marker(self, page: i64) -> ListPageMarker {
        ListPageMarker {
            id: format!("{}/{page}", self.name()),
            listing: self.name().to_owned(),
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
    let pages: BTreeSet<(Listing, i64)> = batch
        .iter()
        .flat_map(|event| {
            let positions = event.positions;
            [
                (Listing::Orders, positions.order),
                (Listing::Customers, positions.customer),
            ]
        })
        .map(|(listing, position)| {
            (
                listing,
                page_of(i64::try_from(position).unwrap_or(i64::MAX)),
            )
        })
        .collect();
    pages
        .into_iter()
        .map(|(listing, page)| listing.marker(page))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_models::tests::placed;

    #[test]
    fn a_batch_marks_each_page_it_fills_once() {
        let mut second_customer = placed("bob@example.com", 1, 64);
        second_customer.positions.customer = 2;

        let markers = writes(&[
            placed("ada@example.com", 1, 1),
            placed("ada@example.com", 1, 63),
            second_customer,
        ]);

        let ids: Vec<&str> = markers.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["orders/0", "orders/1", "customers/0"]);
    }
}
