//! Placing orders, a group at a time: one transaction and a handful of statements for the
//! whole group, whatever its size, so that the cost of a commit (its round trips and its WAL
//! flush) is shared by every order in it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, BigInt, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use shared_events::{CustomerSummary, EventEnvelope, EventId, EventMetadata, OrderId};
use uuid::Uuid;

use super::orders::CustomerSummaryRow;
use super::{corrupt, Store, StoreError};
use crate::domain::{summaries_within_group, NewOrder, OwnedKey, Quantity};

/// A valid order on its way to the database, with the identities it will be known by.
#[derive(Debug, Clone)]
pub struct OrderPlacement {
    pub id: OrderId,
    pub event_id: EventId,
    /// The request that placed it, named in its event.
    pub correlation_id: String,
    pub order: NewOrder,
    pub key: Option<OwnedKey>,
}

impl OrderPlacement {
    pub fn new(order: NewOrder, key: Option<OwnedKey>, correlation_id: String) -> Self {
        Self {
            id: OrderId::from_uuid(Uuid::now_v7()),
            event_id: EventId::from_uuid(Uuid::now_v7()),
            correlation_id,
            order,
            key,
        }
    }
}

/// What placing an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Placed(OrderId),
    /// The idempotency key was used before for the same request: nothing new was written, and
    /// this is the order it placed.
    Replayed(OrderId),
}

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a group: one outcome per order, in order.
#[derive(Debug)]
pub struct GroupOutcomes {
    pub outcomes: Vec<Result<Placement, PlaceOrderError>>,
    /// PostgreSQL refused the group, which was then committed one order per transaction.
    pub split: bool,
}

impl Store {
    /// Commits `group` in one transaction: every order with its customer's summary and its
    /// event, each keyed order with its key.
    ///
    /// One order whose data PostgreSQL refuses (a constraint) must not fail the others, so a
    /// group refused that way is committed again one order per transaction; any other failure
    /// (the database unreachable, a statement timeout) is every order's answer.
    pub async fn place_orders(&self, group: Vec<OrderPlacement>) -> GroupOutcomes {
        let size = group.len();
        let committed = self
            .run(move |conn| {
                // PostgreSQL keeps microseconds; the events must carry the rows' instant.
                let placed_at = Utc::now().trunc_subsecs(6);
                match conn.transaction(|conn| commit_group(conn, placed_at, &group)) {
                    Err(error) if size > 1 && error.is_constraint_violation() => {
                        log::warn!(
                            "PostgreSQL refused a group of {size} orders ({error}); \
                             committing each alone"
                        );
                        let outcomes = group
                            .iter()
                            .map(|placement| {
                                conn.transaction(|conn| {
                                    commit_group(conn, placed_at, std::slice::from_ref(placement))
                                })
                                .map_err(PlaceOrderError::Store)
                                .and_then(|mut outcomes| outcomes.remove(0))
                            })
                            .collect();
                        Ok(GroupOutcomes {
                            outcomes,
                            split: true,
                        })
                    }
                    committed => committed.map(|outcomes| GroupOutcomes {
                        outcomes,
                        split: false,
                    }),
                }
            })
            .await;
        committed.unwrap_or_else(|error| {
            let shared = Arc::new(error);
            GroupOutcomes {
                outcomes: (0..size)
                    .map(|_| Err(PlaceOrderError::Store(StoreError::Group(shared.clone()))))
                    .collect(),
                split: false,
            }
        })
    }
}

/// One transaction's work for `group`, every order placed at `placed_at`.
fn commit_group(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    group: &[OrderPlacement],
) -> Result<Vec<Result<Placement, PlaceOrderError>>, StoreError> {
    let outcomes = resolve_keys(conn, group)?;
    let placed: Vec<&OrderPlacement> = group
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Ok(Placement::Placed(_))))
        .map(|(placement, _)| placement)
        .collect();
    if placed.is_empty() {
        return Ok(outcomes);
    }
    let summaries = count_for_customers(conn, placed_at, &placed)?;
    let events: Vec<EventEnvelope> = placed
        .iter()
        .zip(summaries)
        .map(|(placement, summary)| {
            placement
                .order
                .clone()
                .place(placement.id, placed_at)
                .on_new_order(
                    summary,
                    EventMetadata {
                        event_id: placement.event_id,
                        occurred_at: placed_at,
                        correlation_id: placement.correlation_id.clone(),
                    },
                )
        })
        .collect();
    insert_orders_keys_and_events(conn, placed_at, &placed, &events)?;
    Ok(outcomes)
}

#[derive(QueryableByName)]
struct EarlierKey {
    #[diesel(sql_type = Text)]
    principal: String,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Jsonb)]
    request: serde_json::Value,
    #[diesel(sql_type = SqlUuid)]
    order_id: Uuid,
}

/// Decides each order with an idempotency key: placed, a replay of the order its key placed
/// before (in an earlier transaction or earlier in this group), or refused because the key
/// came with another request. The keys' transaction-scoped advisory locks, taken in one
/// order by every transaction, make a concurrent request with one of these keys wait until
/// this transaction ends.
fn resolve_keys(
    conn: &mut PgConnection,
    group: &[OrderPlacement],
) -> Result<Vec<Result<Placement, PlaceOrderError>>, StoreError> {
    let keys: Vec<&OwnedKey> = group.iter().filter_map(|p| p.key.as_ref()).collect();
    let mut claimed: HashMap<(String, String), (serde_json::Value, OrderId)> = HashMap::new();
    if !keys.is_empty() {
        let mut lock_names: Vec<String> = keys.iter().map(|key| key.lock_name()).collect();
        lock_names.sort_unstable();
        lock_names.dedup();
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest($1) AS name",
        )
        .bind::<Array<Text>, _>(lock_names)
        .execute(conn)?;
        let earlier: Vec<EarlierKey> = diesel::sql_query(
            "SELECT principal, key, request, order_id FROM idempotency_keys \
             WHERE (principal, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        )
        .bind::<Array<Text>, _>(
            keys.iter()
                .map(|k| k.principal.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(keys.iter().map(|k| k.key.as_str()).collect::<Vec<_>>())
        .load(conn)?;
        claimed.extend(earlier.into_iter().map(|row| {
            (
                (row.principal, row.key),
                (row.request, OrderId::from_uuid(row.order_id)),
            )
        }));
    }
    Ok(group
        .iter()
        .map(|placement| {
            let Some(key) = &placement.key else {
                return Ok(Placement::Placed(placement.id));
            };
            let request = placement.order.fingerprint();
            match claimed.get(&(key.principal.clone(), key.key.as_str().to_owned())) {
                Some((earlier, id)) if *earlier == request => Ok(Placement::Replayed(*id)),
                Some(_) => Err(PlaceOrderError::KeyReused),
                None => {
                    claimed.insert(
                        (key.principal.clone(), key.key.as_str().to_owned()),
                        (request, placement.id),
                    );
                    Ok(Placement::Placed(placement.id))
                }
            }
        })
        .collect())
}

/// Counts the orders on their customers (one row per customer, whatever their number of
/// orders here, in email order so that concurrent groups lock rows in one order) and gives
/// the summary each order's event carries, in `placed` order.
fn count_for_customers(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    placed: &[&OrderPlacement],
) -> Result<Vec<CustomerSummary>, StoreError> {
    // Per email: the names of its last order here, and its orders' quantities in order.
    let mut customers: BTreeMap<&str, (&OrderPlacement, Vec<Quantity>)> = BTreeMap::new();
    for placement in placed {
        let customer = &placement.order.customer;
        let entry = customers
            .entry(customer.email.as_str())
            .or_insert_with(|| (placement, Vec::new()));
        entry.0 = placement;
        entry.1.push(placement.order.quantity);
    }
    let rows: Vec<CustomerSummaryRow> = diesel::sql_query(
        "INSERT INTO customers AS c (email, first_name, last_name, summary_version, \
                                     placed_order_count, placed_quantity, last_order_at) \
         SELECT email, first_name, last_name, orders, orders, quantity, $6 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
              AS new (email, first_name, last_name, orders, quantity) \
         ON CONFLICT (email) DO UPDATE SET \
             first_name = excluded.first_name, \
             last_name = excluded.last_name, \
             updated_at = now(), \
             summary_version = c.summary_version + excluded.summary_version, \
             placed_order_count = c.placed_order_count + excluded.placed_order_count, \
             placed_quantity = c.placed_quantity + excluded.placed_quantity, \
             last_order_at = greatest(c.last_order_at, excluded.last_order_at) \
         RETURNING email, summary_version, placed_order_count, placed_quantity, \
                   cancelled_order_count, cancelled_quantity, last_order_at",
    )
    .bind::<Array<Text>, _>(customers.keys().copied().collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        customers
            .values()
            .map(|(last, _)| last.order.customer.first_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        customers
            .values()
            .map(|(last, _)| last.order.customer.last_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(
        customers
            .values()
            .map(|(_, quantities)| quantities.len() as i64)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(
        customers
            .values()
            .map(|(_, quantities)| quantities.iter().map(|q| i64::from(q.get())).sum::<i64>())
            .collect::<Vec<_>>(),
    )
    .bind::<Timestamptz, _>(placed_at)
    .load(conn)?;

    let mut within_group: HashMap<String, std::vec::IntoIter<CustomerSummary>> = HashMap::new();
    for row in rows {
        let email = row.email.clone();
        let quantities = &customers
            .get(email.as_str())
            .ok_or_else(|| corrupt(format!("customer {email} was not in the group")))?
            .1;
        let after_group = CustomerSummary::try_from(row)?;
        within_group.insert(
            email,
            summaries_within_group(&after_group, quantities).into_iter(),
        );
    }
    placed
        .iter()
        .map(|placement| {
            let email = placement.order.customer.email.as_str();
            within_group
                .get_mut(email)
                .and_then(Iterator::next)
                .ok_or_else(|| corrupt(format!("customer {email} was not counted")))
        })
        .collect()
}

/// The orders, the keys they claimed and their events, in one statement.
fn insert_orders_keys_and_events(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    placed: &[&OrderPlacement],
    events: &[EventEnvelope],
) -> Result<(), StoreError> {
    let keyed: Vec<(&OwnedKey, &OrderPlacement)> = placed
        .iter()
        .filter_map(|placement| placement.key.as_ref().map(|key| (key, *placement)))
        .collect();
    let envelopes = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| StoreError::Query(DieselError::SerializationError(error.into())))?;
    let prices: Vec<_> = placed.iter().map(|p| p.order.unit_price.as_ref()).collect();
    diesel::sql_query(
        "WITH placed AS ( \
             INSERT INTO orders (id, customer_email, description, quantity, unit_price_minor, \
                                 currency, created_at) \
             SELECT *, $7::timestamptz \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[]) \
         ), keys AS ( \
             INSERT INTO idempotency_keys (principal, key, request, order_id) \
             SELECT principal, key, request::jsonb, order_id \
             FROM unnest($8::text[], $9::text[], $10::text[], $11::uuid[]) \
                  AS claimed (principal, key, request, order_id) \
         ) \
         INSERT INTO outbox (event_id, aggregate_id, event_type, routing_key, envelope) \
         SELECT event_id, aggregate_id, event_type, routing_key, envelope::jsonb \
         FROM unnest($12::uuid[], $13::uuid[], $14::text[], $15::text[], $16::text[]) \
              AS event (event_id, aggregate_id, event_type, routing_key, envelope)",
    )
    .bind::<Array<SqlUuid>, _>(placed.iter().map(|p| p.id.as_uuid()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        placed
            .iter()
            .map(|p| p.order.customer.email.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        placed
            .iter()
            .map(|p| p.order.description.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Int4>, _>(
        placed
            .iter()
            .map(|p| i32::from(p.order.quantity.get()))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<BigInt>>, _>(
        prices
            .iter()
            .map(|price| price.map(|price| price.amount.get()))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(
        prices
            .iter()
            .map(|price| price.map(|price| price.currency.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind::<Timestamptz, _>(placed_at)
    .bind::<Array<Text>, _>(
        keyed
            .iter()
            .map(|(key, _)| key.principal.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        keyed
            .iter()
            .map(|(key, _)| key.key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        keyed
            .iter()
            .map(|(_, p)| p.order.fingerprint().to_string())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<SqlUuid>, _>(
        keyed
            .iter()
            .map(|(_, p)| p.id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<SqlUuid>, _>(
        events
            .iter()
            .map(|event| event.event_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<SqlUuid>, _>(
        events
            .iter()
            .map(|event| event.aggregate_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        events
            .iter()
            .map(|event| event.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        events
            .iter()
            .map(EventEnvelope::routing_key)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(envelopes)
    .execute(conn)?;
    Ok(())
}
