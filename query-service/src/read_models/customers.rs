//! The customers read model: one document per version of a customer's summary in
//! `customerSummaries`, as the events carry them; a read takes the customer's newest. A
//! customer is an email under an owner: the same email under two owners is two customers.
//!
//! A summary only ever grows by version, and each event carries the customer's whole summary
//! as of that event, so a batch inserts the newest version it holds for each customer under
//! the key `<owner>/<email>/<version>`: a redelivery is refused as a duplicate, an older version
//! arriving late never hides a newer one, and two replicas never write the same document.
//! Inserting costs a fraction of an update on every store (docs/performance.md). Every
//! [`VERSIONS_PER_COMPACTION`] versions the customer's older versions are deleted, which a
//! read never notices: the newest stays.

use std::collections::HashMap;

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};

use super::listings::page_of;
use super::orders::owner_page;
use super::{bson_count, bson_time, key, NumberedEvent};

/// A customer's older summary versions are deleted once every this many versions: a read
/// finds at most about this many versions of a customer.
pub const VERSIONS_PER_COMPACTION: i64 = 8;

/// How many compaction points back a compaction that names the versions it deletes reaches:
/// it also deletes what up to two failed compactions before it left.
const COMPACTION_REACH: i64 = 3;

/// One version of a customer's summary, with the customer's names as of that event and their
/// place in the customer listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDocument {
    /// `<customer key>/<summary version>` (see [`super::key`]).
    #[serde(rename = "_id")]
    pub id: String,
    /// The customer's owner; `""` is the anonymous one.
    pub owner: String,
    pub customer_email: String,
    /// [`customer_key`]: a customer's versions are found by equality on it.
    pub customer_key: String,
    pub summary_version: i64,
    pub first_name: String,
    pub last_name: String,
    /// Orders placed, cancelled or not.
    pub placed_order_count: i64,
    pub placed_quantity: i64,
    pub cancelled_order_count: i64,
    pub cancelled_quantity: i64,
    pub last_order_at: DateTime,
    /// The customer's place in the listing of customers, from their first order.
    pub list_position: i64,
    /// The page of `list_position`: the customer listing reads a page's versions by equality
    /// on it.
    pub list_page: i64,
    /// The customer's place among its owner's customers.
    pub owner_position: i64,
    /// [`owner_page`] of the owner and the page of `owner_position`.
    pub owner_list_page: String,
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

/// Deleting the customer's versions older than one the same batch stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    pub customer_key: String,
    /// The version the batch stores: every older one goes.
    pub below_version: i64,
    /// Where the versions this compaction may still find start: [`COMPACTION_REACH`]
    /// compaction points below the batch's lowest version of the customer. The customer's last
    /// compaction kept a version at or above the point before this one; the two points below
    /// that cover two compactions that failed.
    pub from_version: i64,
}

impl Compaction {
    /// The `_id`s of the versions from `from_version` up to `below_version`, for a store that
    /// deletes by naming them.
    pub fn superseded_ids(&self) -> impl Iterator<Item = String> + '_ {
        (self.from_version..self.below_version)
            .map(|version| version_id(&self.customer_key, version))
    }
}

/// The writes of a batch to `customerSummaries`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerWrites {
    /// The newest version of each customer of the batch, inserted together (unordered; a
    /// duplicate is refused alone).
    pub versions: Vec<SummaryDocument>,
    /// After the inserts: for each customer whose versions in the batch reach a compaction
    /// point.
    pub compactions: Vec<Compaction>,
}

/// Where in [`VERSIONS_PER_COMPACTION`] versions the compactions of the customer `key` fall:
/// spread by the key, so that customers who order at the same pace are not all compacted in
/// the same batches. Every replica must agree, so the hash (FNV-1a of the key's bytes) is
/// fixed.
pub fn compaction_offset(key: &str) -> i64 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % VERSIONS_PER_COMPACTION as u64) as i64
}

/// Whether versions `lowest` to `newest` of the customer `key` reach one of their
/// compaction points: `v` is one when `v + compaction_offset(key)` is a multiple of
/// [`VERSIONS_PER_COMPACTION`].
fn reaches_compaction_point(key: &str, lowest: i64, newest: i64) -> bool {
    let points_up_to =
        |version: i64| (version + compaction_offset(key)).div_euclid(VERSIONS_PER_COMPACTION);
    points_up_to(lowest - 1) < points_up_to(newest)
}

/// The newest summary version of each customer of `batch`, and the compactions it reaches, in
/// the order the batch first names the customers.
pub fn writes(batch: &[NumberedEvent]) -> CustomerWrites {
    let mut newest: Vec<SummaryDocument> = Vec::new();
    let mut lowest: Vec<i64> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for event in batch {
        let version = document(event);
        match index.get(&version.customer_key) {
            Some(&at) => {
                lowest[at] = lowest[at].min(version.summary_version);
                if newest[at].summary_version < version.summary_version {
                    newest[at] = version;
                }
            }
            None => {
                index.insert(version.customer_key.clone(), newest.len());
                lowest.push(version.summary_version);
                newest.push(version);
            }
        }
    }
    let compactions = newest
        .iter()
        .zip(lowest)
        .filter(|(version, lowest)| {
            reaches_compaction_point(&version.customer_key, *lowest, version.summary_version)
        })
        .map(|(version, lowest)| Compaction {
            customer_key: version.customer_key.clone(),
            below_version: version.summary_version,
            from_version: (lowest - COMPACTION_REACH * VERSIONS_PER_COMPACTION).max(1),
        })
        .collect();
    CustomerWrites {
        versions: newest,
        compactions,
    }
}

/// The customer's summary as of `event`.
pub fn document(event: &NumberedEvent) -> SummaryDocument {
    let owner = event.envelope.payload.owner();
    let customer = &event.envelope.payload.order().customer;
    let summary = &event.summary;
    let list_position = bson_count(event.positions.customer);
    let owner_position = bson_count(event.owner_positions.customer);
    let customer_key = customer_key(owner, &customer.email);
    SummaryDocument {
        id: version_id(&customer_key, bson_count(summary.version)),
        owner: owner.to_owned(),
        customer_email: customer.email.clone(),
        customer_key,
        summary_version: bson_count(summary.version),
        first_name: customer.first_name.clone(),
        last_name: customer.last_name.clone(),
        placed_order_count: bson_count(summary.placed_order_count),
        placed_quantity: bson_count(summary.placed_quantity),
        cancelled_order_count: bson_count(summary.cancelled_order_count),
        cancelled_quantity: bson_count(summary.cancelled_quantity),
        last_order_at: bson_time(summary.last_order_at),
        list_position,
        list_page: page_of(list_position),
        owner_position,
        owner_list_page: owner_page(owner, page_of(owner_position)),
    }
}

/// The newest version of each customer among `versions`, in the order of `position`.
pub fn newest_of_each(
    versions: Vec<SummaryDocument>,
    position: impl Fn(&SummaryDocument) -> i64,
) -> Vec<SummaryDocument> {
    let mut newest: HashMap<String, SummaryDocument> = HashMap::new();
    for version in versions {
        match newest.get(&version.customer_key) {
            Some(kept) if kept.summary_version >= version.summary_version => {}
            _ => {
                newest.insert(version.customer_key.clone(), version);
            }
        }
    }
    let mut customers: Vec<SummaryDocument> = newest.into_values().collect();
    customers.sort_unstable_by_key(position);
    customers
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use shared_events::OwnerPositions;

    use super::*;
    use crate::read_models::tests::{cancelled, owned_by, placed, with_summary};

    #[test]
    fn a_batch_inserts_each_customer_s_newest_version_once() {
        let first = with_summary(placed("ada@example.com", 2, 1), 1, (1, 2), (0, 0));
        let second = with_summary(placed("ada@example.com", 3, 2), 2, (2, 5), (0, 0));
        let bob = placed("bob@example.com", 1, 3);
        let cancellation = with_summary(cancelled(&first), 3, (2, 5), (1, 2));

        let writes = writes(&[cancellation, first.clone(), bob, second, first]);

        let versions: Vec<(&str, i64, i64, i64)> = writes
            .versions
            .iter()
            .map(|v| {
                (
                    v.id.as_str(),
                    v.summary_version,
                    v.placed_order_count,
                    v.cancelled_order_count,
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
    fn a_batch_compacts_a_customer_when_its_versions_reach_a_compaction_point() {
        let email = "ada@example.com";
        let key = customer_key("", email);
        let compacted = |versions: &[i64]| {
            let batch: Vec<NumberedEvent> = versions
                .iter()
                .map(|&version| {
                    let count = u64::try_from(version).unwrap();
                    with_summary(placed(email, 1, count), count, (count, count), (0, 0))
                })
                .collect();
            writes(&batch).compactions
        };
        let every = VERSIONS_PER_COMPACTION;
        let point = 2 * every - compaction_offset(&key);
        let at = |below_version, lowest: i64| {
            vec![Compaction {
                customer_key: key.clone(),
                below_version,
                from_version: (lowest - 3 * every).max(1),
            }]
        };
        assert_eq!(compacted(&[point - 1]), []);
        assert_eq!(compacted(&[point]), at(point, point));
        assert_eq!(compacted(&[point + 1, point - 1]), at(point + 1, point - 1));
        assert_eq!(compacted(&[point + 1, point + 2]), []);
        assert_eq!(
            compacted(&[point + every]),
            at(point + every, point + every)
        );
    }

    #[test]
    fn a_compaction_names_every_version_its_customer_may_still_hold_below_the_kept_one() {
        let email = "ada/%@example.com";
        let key = customer_key("team/a", email);
        let every = VERSIONS_PER_COMPACTION;
        let point = 5 * every - compaction_offset(&key);
        let kept = |count: i64| {
            let count = u64::try_from(count).unwrap();
            owned_by(
                with_summary(placed(email, 1, count), count, (count, count), (0, 0)),
                "team/a",
                OwnerPositions {
                    order: count,
                    customer: 1,
                },
            )
        };
        // Stored since the last compaction (at point - every, or later): every version from
        // there; and what two failed compactions before it may have left.
        let stored_before: Vec<String> = (point - 3 * every..point)
            .map(|version| document(&kept(version)).id)
            .collect();

        let writes = writes(&[kept(point)]);

        let [compaction] = writes.compactions.as_slice() else {
            panic!("one compaction: {:?}", writes.compactions);
        };
        let named: Vec<String> = compaction.superseded_ids().collect();
        assert_eq!(named, stored_before);
        assert!(
            !named.contains(&writes.versions[0].id),
            "the kept version is named"
        );
    }

    #[test]
    fn compaction_points_are_spread_and_fixed_by_the_email_alone() {
        let offsets: HashSet<i64> = (0..200)
            .map(|n| compaction_offset(&format!("customer{n}@example.com")))
            .collect();
        assert_eq!(offsets.len(), VERSIONS_PER_COMPACTION as usize);
        assert_eq!(compaction_offset("ada@example.com"), 2);
        assert_eq!(compaction_offset(""), 5);
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

        let writes = writes(&[of("alice", 1), of("bob", 1)]);

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
    fn a_read_takes_each_customer_s_newest_version_in_listing_order() {
        let version = |email: &str, version: u64, position: u64| {
            let mut event = with_summary(placed(email, 1, 1), version, (version, 1), (0, 0));
            event.positions.customer = position;
            document(&event)
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
            .map(|c| (c.customer_email.as_str(), c.summary_version))
            .collect();
        assert_eq!(found, [("ada@example.com", 3), ("bob@example.com", 4)]);
    }
}
