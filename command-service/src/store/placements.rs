//! Placing orders, a group at a time: one transaction and a handful of statements for the
//! whole group, whatever its size, so that the cost of a commit (its round trips and its WAL
//! flush) is shared by every order in it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Text, Uuid as SqlUuid};
use service_support::traces::TraceParent;
use shared_events::{
    CustomerSummary, EventEnvelope, EventId, EventMetadata, ListPositions, OrderId, OwnerPositions,
};
use uuid::Uuid;

use super::orders::CustomerSummaryRow;
use super::outbox::{insert_outbox_rows, OutboxMessage, OutboxRows};
use super::statement::{Parameter, Statement};
use super::{corrupt, in_transaction, unsigned, Store, StoreError};
use crate::domain::{summaries_within_group, IdempotencyKey, NewOrder, OwnedKey, Quantity};
use crate::outbox::Reservation;

/// A valid order on its way to the database, with the identities it will be known by.
#[derive(Debug, Clone)]
pub struct OrderPlacement {
    pub id: OrderId,
    pub event_id: EventId,
    /// The request that placed it, named in its event.
    pub correlation_id: String,
    pub order: NewOrder,
    /// The principal placing it, who will own it (`Principal::scope_name`).
    pub owner: String,
    /// The idempotency key it was sent with, filed under its owner.
    pub key: Option<OwnedKey>,
    /// The trace of the request that placed it, continued by its event.
    pub trace_parent: Option<TraceParent>,
}

impl OrderPlacement {
    pub fn new(
        order: NewOrder,
        owner: String,
        key: Option<IdempotencyKey>,
        correlation_id: String,
    ) -> Self {
        Self {
            id: OrderId::from_uuid(Uuid::now_v7()),
            event_id: EventId::from_uuid(Uuid::now_v7()),
            correlation_id,
            key: key.map(|key| OwnedKey {
                principal: owner.clone(),
                key,
            }),
            owner,
            order,
            trace_parent: None,
        }
    }

    /// The same placement, its event continuing the trace `trace_parent`.
    pub fn with_trace_parent(self, trace_parent: Option<TraceParent>) -> Self {
        Self {
            trace_parent,
            ..self
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
        let reservation = self.handoff.reserve();
        let claimed_for = reservation.as_ref().map(Reservation::lease);
        let committed = self
            .run(move |conn| {
                // PostgreSQL keeps microseconds; the events must carry the rows' instant.
                let placed_at = Utc::now().trunc_subsecs(6);
                let commit = |conn: &mut PgConnection, group: &[OrderPlacement]| {
                    in_transaction(conn, |conn| {
                        commit_group(conn, placed_at, group, claimed_for)
                    })
                };
                match commit(conn, &group) {
                    Err(error) if size > 1 && error.is_constraint_violation() => {
                        log::warn!(
                            "PostgreSQL refused a group of {size} orders ({error}); \
                             committing each alone"
                        );
                        let mut appended = Vec::new();
                        let outcomes = group
                            .iter()
                            .map(|placement| {
                                commit(conn, std::slice::from_ref(placement))
                                    .map_err(PlaceOrderError::Store)
                                    .and_then(|mut committed| {
                                        appended.append(&mut committed.appended);
                                        committed.outcomes.remove(0)
                                    })
                            })
                            .collect();
                        Ok(Committed {
                            outcomes,
                            appended,
                            split: true,
                        })
                    }
                    committed => committed,
                }
            })
            .await;
        match committed {
            Ok(Committed {
                outcomes,
                appended,
                split,
            }) => {
                self.handoff.committed(reservation, appended);
                GroupOutcomes { outcomes, split }
            }
            Err(error) => {
                let shared = Arc::new(error);
                GroupOutcomes {
                    outcomes: (0..size)
                        .map(|_| Err(PlaceOrderError::Store(StoreError::Group(shared.clone()))))
                        .collect(),
                    split: false,
                }
            }
        }
    }
}

/// What a group's transactions committed: an outcome per order, and the events appended.
struct Committed {
    outcomes: Vec<Result<Placement, PlaceOrderError>>,
    appended: Vec<OutboxMessage>,
    split: bool,
}

/// One transaction's work for `group`, every order placed at `placed_at`, its events claimed
/// for the relay for `claimed_for`, if given.
fn commit_group(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    group: &[OrderPlacement],
    claimed_for: Option<Duration>,
) -> Result<Committed, StoreError> {
    let outcomes = resolve_keys(conn, group)?;
    let placed: Vec<&OrderPlacement> = group
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Ok(Placement::Placed(_))))
        .map(|(placement, _)| placement)
        .collect();
    if placed.is_empty() {
        return Ok(Committed {
            outcomes,
            appended: Vec::new(),
            split: false,
        });
    }
    let counted = count_for_customers(conn, placed_at, &placed)?;
    let positions: Vec<(ListPositions, OwnerPositions)> =
        counted.iter().map(|c| c.positions).collect();
    let events: Vec<EventEnvelope> = placed
        .iter()
        .zip(counted)
        .map(|(placement, counted)| {
            placement
                .order
                .clone()
                .place(placement.id, placement.owner.clone(), placed_at)
                .on_new_order(
                    counted.summary,
                    counted.positions,
                    EventMetadata {
                        event_id: placement.event_id,
                        occurred_at: placed_at,
                        correlation_id: placement.correlation_id.clone(),
                    },
                )
        })
        .collect();
    let appended =
        insert_orders_keys_and_events(conn, placed_at, &placed, &positions, &events, claimed_for)?;
    Ok(Committed {
        outcomes,
        appended,
        split: false,
    })
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
    let mut claimed: HashMap<(&str, &str), (serde_json::Value, OrderId)> = HashMap::new();
    let earlier: Vec<EarlierKey> = if keys.is_empty() {
        Vec::new()
    } else {
        let mut names: Vec<String> = keys.iter().map(|key| key.lock_name()).collect();
        names.sort_unstable();
        names.dedup();
        Statement::new(
            "SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest(?) AS name",
            vec![Parameter::OwnedTexts(names)],
        )
        .execute(conn)?;
        Statement::new(
            "SELECT principal, key, request, order_id FROM idempotency_keys \
             WHERE (principal, key) IN (SELECT * FROM unnest(?, ?))",
            vec![
                Parameter::Texts(keys.iter().map(|key| key.principal.as_str()).collect()),
                Parameter::Texts(keys.iter().map(|key| key.key.as_str()).collect()),
            ],
        )
        .load(conn)?
    };
    for row in &earlier {
        claimed.insert(
            (&row.principal, &row.key),
            (row.request.clone(), OrderId::from_uuid(row.order_id)),
        );
    }
    Ok(group
        .iter()
        .map(|placement| {
            let Some(key) = &placement.key else {
                return Ok(Placement::Placed(placement.id));
            };
            let request = placement.order.fingerprint();
            match claimed.get(&(key.principal.as_str(), key.key.as_str())) {
                Some((earlier, id)) if *earlier == request => Ok(Placement::Replayed(*id)),
                Some(_) => Err(PlaceOrderError::KeyReused),
                None => {
                    claimed.insert((&key.principal, key.key.as_str()), (request, placement.id));
                    Ok(Placement::Placed(placement.id))
                }
            }
        })
        .collect())
}

/// A customer's summary after a group's orders are counted on it, with the positions the
/// group gave the customer (on their first order) and their orders.
#[derive(QueryableByName)]
struct CountedCustomerRow {
    #[diesel(embed)]
    summary: CustomerSummaryRow,
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = BigInt)]
    list_position: i64,
    #[diesel(sql_type = BigInt)]
    owner_position: i64,
    /// One for each of the customer's orders in the group, in the group's order: among all
    /// orders, and among the owner's.
    #[diesel(sql_type = Array<BigInt>)]
    order_positions: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    owner_order_positions: Vec<i64>,
}

/// What the event of one order of a group carries beside the order.
struct Counted {
    summary: CustomerSummary,
    positions: (ListPositions, OwnerPositions),
}

/// Counts the orders on their customers (one row per customer, whatever their number of
/// orders here, in (owner, email) order so that concurrent groups lock rows in one order) and
/// on their owners, and gives what each order's event carries, in `placed` order: its
/// customer's summary and its positions.
///
/// Positions among all orders and customers come from sequences; among a subject's, from its
/// row of `owners`, counted once per group: the group's orders and new customers of that
/// owner are numbered up to the row's new counts, in (email, group) order. The anonymous
/// owner has no row: its positions are the list positions.
fn count_for_customers(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    placed: &[&OrderPlacement],
) -> Result<Vec<Counted>, StoreError> {
    // Per (owner, email): the names of its last order here, and its orders' quantities.
    let mut customers: BTreeMap<(&str, &str), (&OrderPlacement, Vec<Quantity>)> = BTreeMap::new();
    for placement in placed {
        let entry = customers
            .entry(customer_key(placement))
            .or_insert_with(|| (placement, Vec::new()));
        entry.0 = placement;
        entry.1.push(placement.order.quantity);
    }
    // A customer's positions are drawn only when they look new: drawn for every row, as a
    // column default would be, the ones that conflict would burn a position each.
    let rows: Vec<CountedCustomerRow> = Statement::new(
        "WITH new AS MATERIALIZED ( \
             SELECT n.*, NOT EXISTS (SELECT FROM customers known \
                                      WHERE known.owner = n.owner AND known.email = n.email) \
                         AS is_new \
               FROM unnest(?, ?, ?, ?, ?, ?) \
                    AS n (owner, email, first_name, last_name, orders, quantity)), \
         owned AS ( \
             INSERT INTO owners AS o (owner, order_count, customer_count) \
             SELECT owner, sum(orders), count(*) FILTER (WHERE is_new) \
               FROM new WHERE owner <> '' GROUP BY owner ORDER BY owner \
             ON CONFLICT (owner) DO UPDATE SET \
                 order_count = o.order_count + excluded.order_count, \
                 customer_count = o.customer_count + excluded.customer_count \
             RETURNING o.owner, o.order_count, o.customer_count), \
         numbered AS MATERIALIZED ( \
             SELECT new.*, \
                    CASE WHEN is_new THEN nextval('customer_list_positions') ELSE 0 END \
                        AS list_position, \
                    ARRAY(SELECT nextval('order_list_positions') \
                            FROM generate_series(1, new.orders)) AS order_positions, \
                    coalesce(count(*) FILTER (WHERE is_new) OVER later, 0) AS new_later, \
                    coalesce(sum(orders) OVER later, 0)::bigint AS orders_later \
               FROM new \
             WINDOW later AS (PARTITION BY owner ORDER BY email \
                              ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)), \
         counted AS ( \
             INSERT INTO customers AS c (owner, email, first_name, last_name, summary_version, \
                                         placed_order_count, placed_quantity, \
                                         last_order_at, list_position, owner_position) \
             SELECT owner, email, first_name, last_name, orders, orders, quantity, ?, \
                    list_position, \
                    CASE WHEN owner = '' THEN list_position \
                         WHEN is_new THEN owned.customer_count - new_later \
                         ELSE 0 END \
               FROM numbered LEFT JOIN owned USING (owner) ORDER BY owner, email \
             ON CONFLICT (owner, email) DO UPDATE SET \
                 first_name = excluded.first_name, \
                 last_name = excluded.last_name, \
                 updated_at = now(), \
                 summary_version = c.summary_version + excluded.summary_version, \
                 placed_order_count = c.placed_order_count + excluded.placed_order_count, \
                 placed_quantity = c.placed_quantity + excluded.placed_quantity, \
                 last_order_at = greatest(c.last_order_at, excluded.last_order_at) \
             RETURNING c.owner, c.email, c.summary_version, c.placed_order_count, \
                       c.placed_quantity, c.cancelled_order_count, c.cancelled_quantity, \
                       c.last_order_at, c.list_position, c.owner_position) \
         SELECT counted.*, numbered.order_positions, \
                CASE WHEN numbered.owner = '' THEN numbered.order_positions \
                     ELSE ARRAY(SELECT owned.order_count - numbered.orders_later \
                                       - numbered.orders + n \
                                  FROM generate_series(1, numbered.orders) AS n) \
                END AS owner_order_positions \
           FROM counted JOIN numbered USING (owner, email) LEFT JOIN owned USING (owner)",
        vec![
            Parameter::Texts(customers.keys().map(|(owner, _)| *owner).collect()),
            Parameter::Texts(customers.keys().map(|(_, email)| *email).collect()),
            Parameter::Texts(
                customers
                    .values()
                    .map(|(last, _)| last.order.customer.first_name.as_str())
                    .collect(),
            ),
            Parameter::Texts(
                customers
                    .values()
                    .map(|(last, _)| last.order.customer.last_name.as_str())
                    .collect(),
            ),
            Parameter::BigInts(
                customers
                    .values()
                    .map(|(_, quantities)| quantities.len() as i64)
                    .collect(),
            ),
            Parameter::BigInts(
                customers
                    .values()
                    .map(|(_, quantities)| quantities.iter().map(|q| i64::from(q.get())).sum())
                    .collect(),
            ),
            Parameter::Instant(placed_at),
        ],
    )
    .load(conn)?;

    let position = |value: i64| unsigned(value, || "a list position given".to_owned());
    let mut within_group: HashMap<(String, String), std::vec::IntoIter<Counted>> = HashMap::new();
    for row in rows {
        let key = (row.owner, row.summary.email.clone());
        let quantities = &customers
            .get(&(key.0.as_str(), key.1.as_str()))
            .ok_or_else(|| corrupt("a customer not in the group was counted".to_owned()))?
            .1;
        if row.order_positions.len() != quantities.len()
            || row.owner_order_positions.len() != quantities.len()
        {
            return Err(corrupt(format!(
                "a customer was given {} and {} positions for {} orders",
                row.order_positions.len(),
                row.owner_order_positions.len(),
                quantities.len()
            )));
        }
        let customer = position(row.list_position)?;
        let owner_customer = position(row.owner_position)?;
        let after_group = CustomerSummary::try_from(row.summary)?;
        let counted = summaries_within_group(&after_group, quantities)
            .into_iter()
            .zip(row.order_positions.iter().zip(&row.owner_order_positions))
            .map(|(summary, (&order, &owner_order))| {
                Ok(Counted {
                    positions: (
                        ListPositions {
                            order: position(order)?,
                            customer,
                            customer_order: summary.placed_order_count,
                        },
                        OwnerPositions {
                            order: position(owner_order)?,
                            customer: owner_customer,
                        },
                    ),
                    summary,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        within_group.insert(key, counted.into_iter());
    }
    placed
        .iter()
        .map(|placement| {
            let (owner, email) = customer_key(placement);
            within_group
                .get_mut(&(owner.to_owned(), email.to_owned()))
                .and_then(Iterator::next)
                .ok_or_else(|| corrupt("a customer in the group was not counted".to_owned()))
        })
        .collect()
}

/// The customer an order is counted on: its email, under its owner.
fn customer_key(placement: &OrderPlacement) -> (&str, &str) {
    (
        placement.owner.as_str(),
        placement.order.customer.email.as_str(),
    )
}

/// The orders, the keys they claimed and their events, in one statement; the events as the
/// relay publishes them, if they were claimed for it.
fn insert_orders_keys_and_events(
    conn: &mut PgConnection,
    placed_at: DateTime<Utc>,
    placed: &[&OrderPlacement],
    positions: &[(ListPositions, OwnerPositions)],
    events: &[EventEnvelope],
    claimed_for: Option<Duration>,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let as_column = |value: u64| {
        i64::try_from(value).map_err(|_| corrupt(format!("list position {value} overflows")))
    };
    let keyed: Vec<(&OwnedKey, &OrderPlacement)> = placed
        .iter()
        .filter_map(|placement| placement.key.as_ref().map(|key| (key, *placement)))
        .collect();
    let prices: Vec<_> = placed.iter().map(|p| p.order.unit_price.as_ref()).collect();
    let mut parameters = vec![
        Parameter::Instant(placed_at),
        Parameter::Uuids(placed.iter().map(|p| p.id.as_uuid()).collect()),
        Parameter::Texts(placed.iter().map(|p| p.owner.as_str()).collect()),
        Parameter::Texts(
            placed
                .iter()
                .map(|p| p.order.customer.email.as_str())
                .collect(),
        ),
        Parameter::Texts(
            placed
                .iter()
                .map(|p| p.order.description.as_str())
                .collect(),
        ),
        Parameter::Ints(
            placed
                .iter()
                .map(|p| i32::from(p.order.quantity.get()))
                .collect(),
        ),
        Parameter::OptionalBigInts(
            prices
                .iter()
                .map(|price| price.map(|price| price.amount.get()))
                .collect(),
        ),
        Parameter::OptionalTexts(
            prices
                .iter()
                .map(|price| price.map(|price| price.currency.as_str()))
                .collect(),
        ),
        Parameter::BigInts(
            positions
                .iter()
                .map(|(list, _)| as_column(list.order))
                .collect::<Result<_, _>>()?,
        ),
        Parameter::BigInts(
            positions
                .iter()
                .map(|(list, _)| as_column(list.customer_order))
                .collect::<Result<_, _>>()?,
        ),
        Parameter::BigInts(
            positions
                .iter()
                .map(|(_, owner)| as_column(owner.order))
                .collect::<Result<_, _>>()?,
        ),
        Parameter::Texts(
            keyed
                .iter()
                .map(|(key, _)| key.principal.as_str())
                .collect(),
        ),
        Parameter::Texts(keyed.iter().map(|(key, _)| key.key.as_str()).collect()),
        Parameter::OwnedTexts(
            keyed
                .iter()
                .map(|(_, p)| p.order.fingerprint().to_string())
                .collect(),
        ),
        Parameter::Uuids(keyed.iter().map(|(_, p)| p.id.as_uuid()).collect()),
    ];
    let rows = OutboxRows::of(
        events,
        placed.iter().map(|p| p.trace_parent.as_ref()),
        claimed_for,
    )?;
    parameters.extend(rows.parameters());
    let appended = Statement::new(
        concat!(
            "WITH placed AS ( \
                 INSERT INTO orders (id, owner, customer_email, description, quantity, \
                                     unit_price_minor, currency, list_position, \
                                     customer_order, owner_position, created_at) \
                 SELECT *, ? FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)), \
             keys AS ( \
                 INSERT INTO idempotency_keys (principal, key, request, order_id) \
                 SELECT principal, key, request::jsonb, order_id FROM unnest(?, ?, ?, ?) \
                     AS claimed (principal, key, request, order_id)) ",
            insert_outbox_rows!()
        ),
        parameters,
    )
    .load(conn)?;
    rows.into_messages(appended)
}
