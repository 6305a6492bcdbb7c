//! The customers read model. A customer is an email under an owner (the same email under two
//! owners is two customers), and each of their events carries their whole summary as of that
//! event (orders placed and cancelled, their quantities, the newest order's time) under a
//! version that rises by one with each placement and cancellation. Every version is stored,
//! each by an insert, in one of two places:
//!
//! - **a summary document** in `customerSummaries`, under `<owner>/<email>/<version>`, for a
//!   customer's first order and one in every [`SpanLength`] orders after it, and for every
//!   cancellation: a batch inserts the newest of these it holds for each customer;
//! - **the order's own document** (`super::orders`), for every order: the summary as of the
//!   order's event, and the order's *span*, its place among the customer's orders divided by
//!   the span's length, so that the orders placed after a stored version are found by
//!   equality on one span.
//!
//! A read takes the newest summary document, then the orders of the span after it
//! ([`Summarised`]). A duplicate is refused, an older version arriving late never hides a
//! newer one (reads take the newest), and two replicas never write the same document. On
//! FerretDB each summary document costs about as much CPU as its order's insert
//! (docs/performance.md), which is why only one order in [`SpanLength::LONG`] has one there,
//! and one in [`SpanLength::SHORT`] on the servers where it costs little. When a batch opens
//! one of a customer's spans, their older summary documents are deleted ([`Compaction`]; on
//! FerretDB at one span in [`SPANS_PER_COMPACTION`]), which a read never notices: the newest
//! stays.

use std::collections::HashMap;

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use shared_events::OrderEvent;

use super::listings::page_of;
use super::orders::{owner_page, EmbeddedCustomer};
use super::{bson_count, bson_time, key, NumberedEvent};

/// How many of a customer's orders a span holds: a placement stores its customer's summary
/// as a document of its own once in this many of the customer's orders (see [`Spans`]), the
/// others' summaries are found in their orders' documents, a span at a time. Every replica
/// and every rebuild of a read model must use one length, so it is the read store's server's
/// (`crate::store::ReadStore::span_length`), never a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLength(i64);

impl SpanLength {
    /// Where a summary document costs the server about as much CPU as its order's insert
    /// (FerretDB): fewer documents per order.
    pub const LONG: Self = Self(8);
    /// Where a summary document costs the server little beside its order's insert
    /// (secantusd-rs, mongod): each customer read fetches half the orders of [`Self::LONG`].
    pub const SHORT: Self = Self(4);

    pub fn orders(self) -> i64 {
        self.0
    }
}

/// Where a store deletes one customer's older summary documents with a statement of its own
/// (FerretDB: see `crate::store::KeyLookups`), it does so once every this many of the
/// customer's spans, since each statement costs about a millisecond of its CPU; a store that
/// deletes many customers' in one statement does so at every span.
pub const SPANS_PER_COMPACTION: i64 = 8;

/// A customer's summary as of one of their events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Rises by one with each of the customer's placements and cancellations.
    pub version: i64,
    /// Orders placed, cancelled or not.
    pub placed_order_count: i64,
    pub placed_quantity: i64,
    pub cancelled_order_count: i64,
    pub cancelled_quantity: i64,
    pub last_order_at: DateTime,
}

/// A stored version of a customer's summary, with the customer's names as of that event and
/// their place in the customer listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDocument {
    /// `<customer key>/<summary version>` (see [`super::key`]).
    #[serde(rename = "_id")]
    pub id: String,
    /// The customer's owner; `""` is the anonymous one.
    pub owner: String,
    pub customer_email: String,
    /// [`customer_key`]: a customer's summary documents are found by equality on it.
    pub customer_key: String,
    pub summary: Summary,
    pub first_name: String,
    pub last_name: String,
    /// The customer's place in the listing of customers, from their first order.
    pub list_position: i64,
    /// The page of `list_position`: the customer listing reads a page's summary documents by
    /// equality on it.
    pub list_page: i64,
    /// The customer's place among its owner's customers.
    pub owner_position: i64,
    /// [`owner_page`] of the owner and the page of `owner_position`.
    pub owner_list_page: String,
    /// [`span_key`] of the span of the customer's orders placed after this version: the
    /// compaction of a store that deletes many customers' documents in one statement finds
    /// them by it.
    pub following_span: String,
}

/// The key of `owner`'s customer `email`.
pub fn customer_key(owner: &str, email: &str) -> String {
    key(&[owner, email])
}

/// The `_id` of version `version` of the customer `customer_key`: `key(&[owner, email,
/// version])`, since a number holds no character that [`key`] escapes.
pub fn version_id(customer_key: &str, version: i64) -> String {
    format!("{customer_key}/{version}")
}

/// How a customer's orders fall into spans. A placement stores a summary document when it
/// opens a span: the customer's first, then one in [`SpanLength`], shifted by
/// a phase that a fixed hash of the customer's key (FNV-1a of its bytes) gives, so that
/// customers who order at one pace do not all store one in the same batches and a page of
/// customers holds customers at every point of their spans. The span after a stored placement
/// holds the orders after it up to the next stored one, which closes it: a read that has the
/// newest summary document needs that span's orders alone. Every replica must agree, so the
/// hash is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spans {
    length: SpanLength,
    phase: i64,
}

impl Spans {
    pub fn of(customer_key: &str, length: SpanLength) -> Self {
        let hash = customer_key
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        Self {
            length,
            phase: (hash % length.orders().unsigned_abs()) as i64,
        }
    }

    /// The span of the customer's order at `customer_order` (from 2; the first order is in
    /// none that a read looks up).
    pub fn span_of(self, customer_order: i64) -> i64 {
        (customer_order - 2 + self.phase).div_euclid(self.length.orders())
    }

    /// Whether the customer's order at `customer_order` stores a summary document.
    pub fn opens_span(self, customer_order: i64) -> bool {
        customer_order == 1 || (customer_order - 1 + self.phase) % self.length.orders() == 0
    }

    /// The customer's order that closes `span`: the next one that stores a summary document.
    pub fn last_order_of(self, span: i64) -> i64 {
        (span + 1) * self.length.orders() + 1 - self.phase
    }
}

/// The key of span `span` of the customer `customer_key`'s orders, as their documents carry it.
pub fn span_key(customer_key: &str, span: i64) -> String {
    format!("{customer_key}/{span}")
}

/// Whether `event`'s summary gets a document of its own: a cancellation's always (it may
/// belong to an order of any span), a placement's when it opens one of its customer's `spans`.
fn stores_summary(spans: Spans, event: &NumberedEvent) -> bool {
    match event.envelope.payload {
        OrderEvent::OrderCancelled(_) => true,
        OrderEvent::OnNewOrder(_) => spans.opens_span(bson_count(event.positions.customer_order)),
    }
}

/// How many spans back from the one a batch opens its compaction deletes the customer's
/// documents, by [`Compaction::superseded_spans`]: what the last compaction left and what two
/// failed ones before it may have left.
const COMPACTION_REACH: i64 = 3;

/// Deleting the customer's summary documents older than one the same batch stores, for a
/// batch that opens one of the customer's spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    pub customer_key: String,
    /// The newest version the batch stores: every older document goes.
    pub below_version: i64,
    /// The newest span the batch opens.
    pub opened_span: i64,
    /// Whether a span the batch opens is one of the customer's sparse compaction points, the
    /// only ones a store that deletes with a statement per customer makes.
    pub at_sparse_point: bool,
}

impl Compaction {
    /// The `followingSpan`s of the documents this compaction deletes: the spans before the one
    /// it opens, as far as [`COMPACTION_REACH`]. Every document whose orders follow in an
    /// earlier span is older than the placement that opens this one.
    pub fn superseded_spans(&self) -> impl Iterator<Item = String> + '_ {
        ((self.opened_span - COMPACTION_REACH).max(0)..self.opened_span)
            .map(|span| span_key(&self.customer_key, span))
    }
}

/// The writes of a batch to `customerSummaries`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerWrites {
    /// For each customer of the batch with an event that stores its summary, the newest such,
    /// inserted together (unordered; a duplicate is refused alone).
    pub versions: Vec<SummaryDocument>,
    /// After the inserts: for each customer whose batch opens one of their spans.
    pub compactions: Vec<Compaction>,
}

/// If `event` opens one of its customer's `spans` after their first: that span, and whether it
/// is one of their sparse compaction points, one span in [`SPANS_PER_COMPACTION`] (spread
/// across customers by their spans' phases).
fn opens_span(spans: Spans, event: &NumberedEvent) -> Option<(i64, bool)> {
    let customer_order = bson_count(event.positions.customer_order);
    let opens = matches!(event.envelope.payload, OrderEvent::OnNewOrder(_))
        && spans.opens_span(customer_order)
        && customer_order > 1;
    let span = spans.span_of(customer_order + 1);
    opens.then_some((span, span % SPANS_PER_COMPACTION == 0))
}

/// For each customer of `batch` with an event that stores its summary, the newest such, and
/// the compactions the batch reaches, in the order the batch first names the customers.
pub fn writes(batch: &[NumberedEvent], length: SpanLength) -> CustomerWrites {
    let mut newest: Vec<SummaryDocument> = Vec::new();
    // For each customer: the newest span the batch opens, and whether any is a sparse point.
    let mut compacting: Vec<(Option<i64>, bool)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for event in batch {
        let payload = &event.envelope.payload;
        let spans = Spans::of(
            &customer_key(payload.owner(), &payload.order().customer.email),
            length,
        );
        // Most events store no summary document: nothing of one is built for them.
        if !stores_summary(spans, event) {
            continue;
        }
        let version = document(event, length);
        let at = *index
            .entry(version.customer_key.clone())
            .or_insert_with(|| newest.len());
        let opened = opens_span(spans, event);
        if at == newest.len() {
            newest.push(version);
            compacting.push((None, false));
        } else if newest[at].summary.version < version.summary.version {
            newest[at] = version;
        }
        if let Some((span, at_sparse_point)) = opened {
            let (newest_span, sparse) = &mut compacting[at];
            *newest_span = Some(newest_span.map_or(span, |newest| newest.max(span)));
            *sparse |= at_sparse_point;
        }
    }
    let compactions = newest
        .iter()
        .zip(compacting)
        .filter_map(|(version, (opened_span, at_sparse_point))| {
            opened_span.map(|opened_span| Compaction {
                customer_key: version.customer_key.clone(),
                below_version: version.summary.version,
                opened_span,
                at_sparse_point,
            })
        })
        .collect();
    CustomerWrites {
        versions: newest,
        compactions,
    }
}

/// The customer's summary as `event` carries it.
pub fn summary(event: &NumberedEvent) -> Summary {
    let summary = &event.summary;
    Summary {
        version: bson_count(summary.version),
        placed_order_count: bson_count(summary.placed_order_count),
        placed_quantity: bson_count(summary.placed_quantity),
        cancelled_order_count: bson_count(summary.cancelled_order_count),
        cancelled_quantity: bson_count(summary.cancelled_quantity),
        last_order_at: bson_time(summary.last_order_at),
    }
}

/// The customer's summary document as of `event`, in spans of `length`.
pub fn document(event: &NumberedEvent, length: SpanLength) -> SummaryDocument {
    let owner = event.envelope.payload.owner();
    let customer = &event.envelope.payload.order().customer;
    let list_position = bson_count(event.positions.customer);
    let owner_position = bson_count(event.owner_positions.customer);
    let customer_key = customer_key(owner, &customer.email);
    let summary = summary(event);
    let following_span = following_span(&customer_key, &summary, length);
    SummaryDocument {
        id: version_id(&customer_key, summary.version),
        owner: owner.to_owned(),
        customer_email: customer.email.clone(),
        customer_key,
        summary,
        first_name: customer.first_name.clone(),
        last_name: customer.last_name.clone(),
        list_position,
        list_page: page_of(list_position),
        owner_position,
        owner_list_page: owner_page(owner, page_of(owner_position)),
        following_span,
    }
}

/// [`span_key`] of the span of the orders the customer places after `summary`.
fn following_span(customer_key: &str, summary: &Summary, length: SpanLength) -> String {
    let span = Spans::of(customer_key, length).span_of(summary.placed_order_count + 1);
    span_key(customer_key, span)
}

/// The newest summary document of each customer among `versions`, in the order of
/// `position`.
pub fn newest_of_each(
    versions: Vec<SummaryDocument>,
    position: impl Fn(&SummaryDocument) -> i64,
) -> Vec<SummaryDocument> {
    let mut newest: HashMap<String, SummaryDocument> = HashMap::new();
    for version in versions {
        match newest.get(&version.customer_key) {
            Some(kept) if kept.summary.version >= version.summary.version => {}
            _ => {
                newest.insert(version.customer_key.clone(), version);
            }
        }
    }
    let mut customers: Vec<SummaryDocument> = newest.into_values().collect();
    customers.sort_unstable_by_key(position);
    customers
}

/// What an order's document carries of its customer: all a read needs to answer the customer
/// as of that order ([`as_of_order`]), and no more, so that a read of many orders decodes
/// little.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryInOrder {
    pub owner: String,
    pub customer_email: String,
    pub customer: EmbeddedCustomer,
    pub customer_order: i64,
    pub customer_summary: Summary,
    pub customer_span: String,
    pub customer_position: i64,
    pub owner_customer_position: i64,
}

/// A customer's summary as of `order`'s version, from what its document carries, in spans of
/// `length`.
pub fn as_of_order(order: &SummaryInOrder, length: SpanLength) -> SummaryDocument {
    let customer_key = customer_key(&order.owner, &order.customer_email);
    SummaryDocument {
        following_span: following_span(&customer_key, &order.customer_summary, length),
        id: version_id(&customer_key, order.customer_summary.version),
        owner: order.owner.clone(),
        customer_email: order.customer_email.clone(),
        customer_key,
        summary: order.customer_summary.clone(),
        first_name: order.customer.first_name.clone(),
        last_name: order.customer.last_name.clone(),
        list_position: order.customer_position,
        list_page: page_of(order.customer_position),
        owner_position: order.owner_customer_position,
        owner_list_page: owner_page(&order.owner, page_of(order.owner_customer_position)),
    }
}

/// A customer's summary being completed from their orders' documents: from the newest
/// summary document found (or an order's, see [`Summarised::take_order`]), the spans after
/// it, one at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Summarised {
    /// The newest version found so far, with the names of its event.
    pub customer: SummaryDocument,
    /// The span to read next, or `None` when the summary is complete.
    pub next_span: Option<i64>,
    spans: Spans,
}

impl Summarised {
    /// Starting from `newest`, the customer's newest summary document, in spans of `length`.
    pub fn from(newest: SummaryDocument, length: SpanLength) -> Self {
        let spans = Spans::of(&newest.customer_key, length);
        let next_span = Some(spans.span_of(newest.summary.placed_order_count + 1));
        Self {
            customer: newest,
            next_span,
            spans,
        }
    }

    /// Takes in `orders`, the documents of the span it asked for, and says which span comes
    /// next. The orders placed after a summary document are in the span of its placed-order
    /// count + 1 and, while the customer has filled a span, in the next: each span's first
    /// placement stores a summary document, written before the orders of its batch, so once
    /// every earlier event is applied no order lies beyond a span the customer has not filled.
    pub fn take_span<'a>(&mut self, orders: impl IntoIterator<Item = &'a SummaryInOrder>) {
        let Some(span) = self.next_span.take() else {
            return;
        };
        let span_end = self.spans.last_order_of(span);
        let mut full = false;
        // The span's newest order alone is taken in: a summary is built once per span, not
        // once per order.
        let mut newest: Option<&SummaryInOrder> = None;
        for order in orders {
            full |= order.customer_order == span_end;
            if newest.is_none_or(|newest| {
                order.customer_summary.version > newest.customer_summary.version
            }) {
                newest = Some(order);
            }
        }
        if let Some(order) = newest {
            self.take_order(order);
        }
        if full {
            self.next_span = Some(span + 1);
        }
    }

    /// Takes in the summary `order`'s document carries, if it is the customer's and newer:
    /// also how a read with a consistency token counts the token's order whatever else is
    /// applied yet. The next span to read follows it.
    pub fn take_order(&mut self, order: &SummaryInOrder) {
        let newer = order.customer_summary.version > self.customer.summary.version;
        if newer && customer_key(&order.owner, &order.customer_email) == self.customer.customer_key
        {
            self.customer = as_of_order(order, self.spans.length);
            let after = self
                .spans
                .span_of(order.customer_summary.placed_order_count + 1);
            self.next_span = self.next_span.map(|span| span.max(after));
        }
    }

    /// The key of the span to read next.
    pub fn next_span_key(&self) -> Option<String> {
        self.next_span
            .map(|span| span_key(&self.customer.customer_key, span))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use mongodb::bson;
    use shared_events::OwnerPositions;

    use super::*;
    use crate::read_models::orders;
    use crate::read_models::tests::{cancelled, owned_by, placed, with_summary};

    /// The `n`th order of the anonymous owner's customer `email`, its summary's version `n`,
    /// each order of quantity 1.
    fn nth_order(email: &str, n: u64) -> NumberedEvent {
        let mut event = with_summary(placed(email, 1, n), n, (n, n), (0, 0));
        event.positions.customer_order = n;
        event
    }

    /// Both lengths a read model's spans may have: each rule holds for either.
    const LENGTHS: [SpanLength; 2] = [SpanLength::SHORT, SpanLength::LONG];

    /// The order of the anonymous owner's customer `email` that opens their span `span`.
    fn opener(email: &str, span: i64, length: SpanLength) -> u64 {
        let first = match span {
            0 => 1,
            _ => Spans::of(&customer_key("", email), length).last_order_of(span - 1),
        };
        u64::try_from(first).unwrap()
    }

    #[test]
    fn a_span_s_first_placement_and_every_cancellation_store_a_summary_document() {
        let email = "ada@example.com";
        for length in LENGTHS {
            let spans = Spans::of(&customer_key("", email), length);
            let stored = |event: &NumberedEvent| stores_summary(spans, event);
            let every = u64::try_from(length.orders()).unwrap();

            let openers: Vec<u64> = (1..=4 * every)
                .filter(|&n| stored(&nth_order(email, n)))
                .collect();

            assert_eq!(openers[0], 1, "the first order");
            assert!(openers[1] > 1 && openers[1] <= every + 1, "{openers:?}");
            assert!(
                openers
                    .windows(2)
                    .skip(1)
                    .all(|pair| pair[1] - pair[0] == every),
                "{openers:?}"
            );
            let next = |span| opener(email, span, length);
            assert_eq!(openers[1..4], [next(1), next(2), next(3)]);
            assert!(stored(&cancelled(&nth_order(email, 2))));
        }
    }

    #[test]
    fn a_batch_inserts_each_customer_s_newest_stored_version_once() {
        let first = nth_order("ada@example.com", 1);
        let second = nth_order("ada@example.com", 2);
        let bob = placed("bob@example.com", 1, 3);
        let cancellation = with_summary(cancelled(&first), 3, (2, 2), (1, 1));

        let writes = writes(
            &[cancellation, first.clone(), bob, second, first],
            SpanLength::SHORT,
        );

        let versions: Vec<(&str, i64, i64, i64)> = writes
            .versions
            .iter()
            .map(|v| {
                (
                    v.id.as_str(),
                    v.summary.version,
                    v.summary.placed_order_count,
                    v.summary.cancelled_order_count,
                )
            })
            .collect();
        assert_eq!(
            versions,
            [
                ("/ada@example.com/3", 3, 2, 1),
                ("/bob@example.com/1", 1, 1, 0)
            ]
        );
    }

    #[test]
    fn a_batch_that_opens_a_span_compacts_below_its_newest_document() {
        let email = "ada@example.com";
        let key = customer_key("", email);
        for length in LENGTHS {
            let spans = Spans::of(&key, length);
            let point = opener(email, SPANS_PER_COMPACTION, length);
            let compacted = |batch: &[NumberedEvent]| writes(batch, length).compactions;
            let below = |version: u64, at_sparse_point: bool| {
                let version = i64::try_from(version).unwrap();
                vec![Compaction {
                    customer_key: key.clone(),
                    below_version: version,
                    opened_span: spans.span_of(version + 1),
                    at_sparse_point,
                }]
            };

            assert_eq!(compacted(&[nth_order(email, 1)]), [], "the first span");
            let second = opener(email, 1, length);
            assert_eq!(compacted(&[nth_order(email, second)]), below(second, false));
            assert_eq!(compacted(&[nth_order(email, point - 1)]), []);
            assert_eq!(compacted(&[nth_order(email, point)]), below(point, true));
            assert_eq!(compacted(&[nth_order(email, point + 1)]), []);
            let later_cancellation = with_summary(
                cancelled(&nth_order(email, 2)),
                point + 1,
                (point, point),
                (1, 1),
            );
            let mut with_cancellation = below(point, true);
            with_cancellation[0].below_version += 1;
            assert_eq!(
                compacted(&[nth_order(email, point), later_cancellation.clone()]),
                with_cancellation,
                "below the newest document the batch stores"
            );
            assert_eq!(compacted(&[later_cancellation]), []);
            let next_point = opener(email, 2 * SPANS_PER_COMPACTION, length);
            assert_eq!(
                compacted(&[nth_order(email, next_point)]),
                below(next_point, true)
            );
        }
    }

    #[test]
    fn a_compaction_names_the_spans_before_the_one_it_opens() {
        let email = "ada/%@example.com";
        let key = customer_key("team/a", email);
        let compaction = |opened_span| Compaction {
            customer_key: key.clone(),
            below_version: 100,
            opened_span,
            at_sparse_point: false,
        };
        for length in LENGTHS {
            let stored_in = |span: i64| {
                let order = Spans::of(&key, length).last_order_of(span - 1);
                let event = owned_by(
                    nth_order(email, u64::try_from(order).unwrap()),
                    "team/a",
                    OwnerPositions {
                        order: 1,
                        customer: 1,
                    },
                );
                document(&event, length).following_span
            };

            let named: Vec<String> = compaction(5).superseded_spans().collect();

            assert_eq!(named, [stored_in(2), stored_in(3), stored_in(4)]);
            assert!(!named.contains(&stored_in(5)), "the kept document's span");
            assert_eq!(compaction(1).superseded_spans().count(), 1);
        }
    }

    #[test]
    fn span_phases_are_spread_and_fixed_by_the_key_and_the_length_alone() {
        for length in LENGTHS {
            let phases: HashSet<i64> = (0..200)
                .map(|n| Spans::of(&format!("customer{n}@example.com"), length).phase)
                .collect();
            assert_eq!(phases.len(), usize::try_from(length.orders()).unwrap());
        }
        let phase = |key: &str, length| Spans::of(key, length).phase;
        assert_eq!(phase("ada@example.com", SpanLength::LONG), 2);
        assert_eq!(phase("", SpanLength::LONG), 5);
        assert_eq!(phase("ada@example.com", SpanLength::SHORT), 2);
        assert_eq!(phase("", SpanLength::SHORT), 1);
    }

    #[test]
    fn one_email_under_two_owners_is_two_customers() {
        let of = |owner: &str, customer: u64| {
            owned_by(
                placed("ada@example.com", 1, customer),
                owner,
                OwnerPositions { order: 1, customer },
            )
        };

        let writes = writes(&[of("alice", 1), of("bob", 1)], SpanLength::SHORT);

        let ids: Vec<(&str, &str, &str)> = writes
            .versions
            .iter()
            .map(|v| {
                (
                    v.id.as_str(),
                    v.customer_key.as_str(),
                    v.owner_list_page.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "alice/ada@example.com/1",
                    "alice/ada@example.com",
                    "alice/0"
                ),
                ("bob/ada@example.com/1", "bob/ada@example.com", "bob/0"),
            ]
        );
    }

    #[test]
    fn a_read_takes_each_customer_s_newest_document_in_listing_order() {
        let version = |email: &str, version: u64, position: u64| {
            let mut event = with_summary(placed(email, 1, 1), version, (version, 1), (0, 0));
            event.positions.customer = position;
            document(&event, SpanLength::SHORT)
        };

        let customers = newest_of_each(
            vec![
                version("bob@example.com", 1, 2),
                version("ada@example.com", 3, 1),
                version("bob@example.com", 4, 2),
                version("ada@example.com", 2, 1),
            ],
            |customer| customer.list_position,
        );

        let found: Vec<(&str, i64)> = customers
            .iter()
            .map(|c| (c.customer_email.as_str(), c.summary.version))
            .collect();
        assert_eq!(found, [("ada@example.com", 3), ("bob@example.com", 4)]);
    }

    /// The documents of customer `email`'s orders `from..=to` in spans of `length`, decoded as
    /// a read decodes them.
    fn order_documents(email: &str, from: u64, to: u64, length: SpanLength) -> Vec<SummaryInOrder> {
        (from..=to)
            .map(|n| {
                let order = orders::document(&nth_order(email, n), length);
                bson::from_document(bson::to_document(&order).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_summary_is_completed_from_the_spans_after_the_newest_document_while_they_are_full() {
        let email = "ada@example.com";
        for length in LENGTHS {
            let documents = |from, to| order_documents(email, from, to, length);
            let (first, second) = (opener(email, 1, length), opener(email, 2, length));
            let stored = document(&nth_order(email, first), length);
            let key = stored.customer_key.clone();
            let mut summarised = Summarised::from(stored, length);

            assert_eq!(summarised.next_span_key(), Some(format!("{key}/1")));
            // The next stored placement's document not applied yet: the span it closes is full.
            summarised.take_span(&documents(first + 1, second));
            assert_eq!(summarised.customer.summary.version, second as i64);
            assert_eq!(
                summarised.next_span_key(),
                Some(format!("{key}/2")),
                "span 1 is full"
            );
            // The store returns a span's orders in no particular order.
            let mut unordered = documents(second + 1, second + 2);
            unordered.reverse();
            summarised.take_span(&unordered);
            let newest = second as i64 + 2;
            assert_eq!(summarised.customer.summary.version, newest);
            assert_eq!(summarised.customer.summary.placed_order_count, newest);
            assert_eq!(summarised.customer.id, format!("{key}/{newest}"));
            assert_eq!(summarised.next_span, None, "span 2 is not");
        }
    }

    #[test]
    fn a_summary_document_newer_than_the_span_s_orders_stays() {
        let email = "ada@example.com";
        let length = SpanLength::SHORT;
        let cancellation = with_summary(cancelled(&nth_order(email, 1)), 2, (1, 1), (1, 1));
        let mut summarised = Summarised::from(document(&cancellation, length), length);

        summarised.take_span(&order_documents(email, 1, 1, length));

        assert_eq!(summarised.customer.summary.version, 2);
        assert_eq!(summarised.customer.summary.cancelled_order_count, 1);
        assert_eq!(summarised.next_span, None);
    }

    #[test]
    fn a_token_s_order_counts_when_it_is_the_customer_s_and_newer() {
        let email = "ada@example.com";
        for length in LENGTHS {
            let mut summarised = Summarised::from(document(&nth_order(email, 1), length), length);
            let [newer]: [SummaryInOrder; 1] =
                order_documents(email, 12, 12, length).try_into().unwrap();
            let [another_customer_s]: [SummaryInOrder; 1] =
                order_documents("bob@example.com", 30, 30, length)
                    .try_into()
                    .unwrap();

            summarised.take_order(&another_customer_s);
            assert_eq!(summarised.customer.summary.version, 1);
            summarised.take_order(&newer);

            assert_eq!(summarised.customer, as_of_order(&newer, length));
            assert_eq!(summarised.customer.summary.version, 12);
            assert_eq!(
                summarised.next_span,
                Some(Spans::of(&customer_key("", email), length).span_of(13)),
                "the orders after the token's"
            );
        }
    }
}
