use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::upsert::excluded;
use shared_events::{
    CustomerDetails, CustomerSummary, EventEnvelope, EventMetadata, Money, OrderDetails, OrderId,
};
use uuid::Uuid;

use super::schema::{customers, idempotency_keys, orders};
use super::{outbox, Store, StoreError};
use crate::domain::{
    CancelOrder, CancelRejection, OrderRecord, OrderStatus, OwnedKey, PlacedOrder,
};

/// A customer with their first order counted.
#[derive(Insertable)]
#[diesel(table_name = customers)]
struct NewCustomerRow<'a> {
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    summary_version: i64,
    placed_order_count: i64,
    placed_quantity: i64,
    last_order_at: Option<DateTime<Utc>>,
}

/// A customer's summary as the transaction that changed it left it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = customers)]
struct CustomerSummaryRow {
    email: String,
    summary_version: i64,
    placed_order_count: i64,
    placed_quantity: i64,
    cancelled_order_count: i64,
    cancelled_quantity: i64,
    last_order_at: Option<DateTime<Utc>>,
}

impl TryFrom<CustomerSummaryRow> for CustomerSummary {
    type Error = StoreError;

    fn try_from(row: CustomerSummaryRow) -> Result<Self, StoreError> {
        let count = |value: i64| {
            u64::try_from(value)
                .map_err(|_| corrupt(format!("customer {} has a count of {value}", row.email)))
        };
        Ok(Self {
            version: count(row.summary_version)?,
            placed_order_count: count(row.placed_order_count)?,
            placed_quantity: count(row.placed_quantity)?,
            cancelled_order_count: count(row.cancelled_order_count)?,
            cancelled_quantity: count(row.cancelled_quantity)?,
            last_order_at: row
                .last_order_at
                .ok_or_else(|| corrupt(format!("customer {} has no order", row.email)))?,
        })
    }
}

diesel::define_sql_function! {
    /// PostgreSQL's `greatest`, which skips NULLs.
    fn greatest(
        a: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        b: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>;
}

#[derive(Insertable)]
#[diesel(table_name = orders)]
struct NewOrderRow<'a> {
    id: Uuid,
    customer_email: &'a str,
    description: &'a str,
    quantity: i32,
    unit_price_minor: Option<i64>,
    currency: Option<&'a str>,
    created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    status: String,
    version: i64,
    customer_email: String,
    description: String,
    quantity: i32,
    unit_price_minor: Option<i64>,
    currency: Option<String>,
    created_at: DateTime<Utc>,
}

/// What `place_order` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Placed,
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

impl From<DieselError> for PlaceOrderError {
    fn from(error: DieselError) -> Self {
        Self::Store(error.into())
    }
}

/// Why a cancellation was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CancelOrderError {
    #[error("no order with that id")]
    NotFound,
    #[error(transparent)]
    Rejected(#[from] CancelRejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DieselError> for CancelOrderError {
    fn from(error: DieselError) -> Self {
        Self::Store(error.into())
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Query(DieselError::DeserializationError(what.into()))
}

impl Store {
    /// Persists the order, the customer's latest names and summary, and the order's event
    /// (carrying that summary) in one transaction: either all are committed or none is.
    ///
    /// With an idempotency key, the key is looked up first under a transaction-scoped lock
    /// of the key and recorded with the order, so however often (or however concurrently) a
    /// request is retried, one order is placed.
    pub async fn place_order(
        &self,
        order: PlacedOrder,
        metadata: EventMetadata,
        key: Option<OwnedKey>,
    ) -> Result<Placement, PlaceOrderError> {
        let keyed = key.map(|key| (key, order.order.fingerprint()));
        self.run(move |conn| {
            conn.transaction(|conn| {
                if let Some((key, request)) = &keyed {
                    if let Some(placement) = earlier_placement(conn, key, request)? {
                        return Ok(placement);
                    }
                }
                let customer = &order.order.customer;
                let summary: CustomerSummary = diesel::insert_into(customers::table)
                    .values(NewCustomerRow {
                        email: customer.email.as_str(),
                        first_name: customer.first_name.as_str(),
                        last_name: customer.last_name.as_str(),
                        summary_version: 1,
                        placed_order_count: 1,
                        placed_quantity: i64::from(order.order.quantity.get()),
                        last_order_at: Some(order.created_at),
                    })
                    .on_conflict(customers::email)
                    .do_update()
                    .set((
                        customers::first_name.eq(excluded(customers::first_name)),
                        customers::last_name.eq(excluded(customers::last_name)),
                        customers::updated_at.eq(diesel::dsl::now),
                        customers::summary_version.eq(customers::summary_version + 1),
                        customers::placed_order_count.eq(customers::placed_order_count + 1),
                        customers::placed_quantity
                            .eq(customers::placed_quantity + excluded(customers::placed_quantity)),
                        customers::last_order_at.eq(greatest(
                            customers::last_order_at,
                            excluded(customers::last_order_at),
                        )),
                    ))
                    .returning(CustomerSummaryRow::as_returning())
                    .get_result::<CustomerSummaryRow>(conn)?
                    .try_into()?;
                let event = order.on_new_order(summary, metadata);
                let price = order.order.unit_price.as_ref();
                diesel::insert_into(orders::table)
                    .values(NewOrderRow {
                        id: order.id.as_uuid(),
                        customer_email: customer.email.as_str(),
                        description: order.order.description.as_str(),
                        quantity: i32::from(order.order.quantity.get()),
                        unit_price_minor: price.map(|price| price.amount.get()),
                        currency: price.map(|price| price.currency.as_str()),
                        created_at: order.created_at,
                    })
                    .execute(conn)?;
                if let Some((key, request)) = &keyed {
                    diesel::insert_into(idempotency_keys::table)
                        .values((
                            idempotency_keys::principal.eq(&key.principal),
                            idempotency_keys::key.eq(key.key.as_str()),
                            idempotency_keys::request.eq(request),
                            idempotency_keys::order_id.eq(order.id.as_uuid()),
                        ))
                        .execute(conn)?;
                }
                outbox::append(conn, &event)?;
                Ok(Placement::Placed)
            })
        })
        .await
    }

    /// Cancels an order: locks its row, lets the domain decide, and commits the new state with
    /// the `OrderCancelled` event, or nothing. Concurrent commands on one order are serialised
    /// by the row lock, so exactly one of two racing cancellations succeeds.
    pub async fn cancel_order(
        &self,
        command: CancelOrder,
        cancelled_at: DateTime<Utc>,
        metadata: EventMetadata,
    ) -> Result<EventEnvelope, CancelOrderError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                let record =
                    lock_order(conn, command.order_id)?.ok_or(CancelOrderError::NotFound)?;
                // Counted before the domain decides: a rejection rolls the count back with the
                // rest of the transaction.
                let summary: CustomerSummary =
                    diesel::update(customers::table.find(&record.details.customer.email))
                        .set((
                            customers::summary_version.eq(customers::summary_version + 1),
                            customers::cancelled_order_count
                                .eq(customers::cancelled_order_count + 1),
                            customers::cancelled_quantity
                                .eq(customers::cancelled_quantity
                                    + i64::from(record.details.quantity)),
                        ))
                        .returning(CustomerSummaryRow::as_returning())
                        .get_result::<CustomerSummaryRow>(conn)?
                        .try_into()?;
                let event = record.cancel(&command, cancelled_at, summary, metadata)?;
                let version = i64::try_from(event.aggregate_version)
                    .map_err(|_| corrupt(format!("version overflow on order {}", record.id)))?;
                diesel::update(orders::table.find(command.order_id.as_uuid()))
                    .set((
                        orders::status.eq(OrderStatus::Cancelled.as_str()),
                        orders::version.eq(version),
                        orders::cancelled_at.eq(Some(cancelled_at)),
                        orders::cancellation_reason
                            .eq(command.reason.as_ref().map(|reason| reason.as_str())),
                    ))
                    .execute(conn)?;
                outbox::append(conn, &event)?;
                Ok(event)
            })
        })
        .await
    }
}

/// The earlier placement under `key`, if there is one, for the same `request`. Taking the
/// advisory lock of the key makes a concurrent request with the same key wait here until the
/// first one committed or rolled back.
fn earlier_placement(
    conn: &mut PgConnection,
    key: &OwnedKey,
    request: &serde_json::Value,
) -> Result<Option<Placement>, PlaceOrderError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(key.lock_name())
        .execute(conn)?;
    let earlier: Option<(serde_json::Value, Uuid)> = idempotency_keys::table
        .find((&key.principal, key.key.as_str()))
        .select((idempotency_keys::request, idempotency_keys::order_id))
        .first(conn)
        .optional()?;
    match earlier {
        None => Ok(None),
        Some((earlier_request, order_id)) if earlier_request == *request => {
            Ok(Some(Placement::Replayed(OrderId::from_uuid(order_id))))
        }
        Some(_) => Err(PlaceOrderError::KeyReused),
    }
}

/// Loads the order and locks its row until the transaction ends.
fn lock_order(
    conn: &mut PgConnection,
    id: OrderId,
) -> Result<Option<OrderRecord>, CancelOrderError> {
    let Some(row) = orders::table
        .find(id.as_uuid())
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let (first_name, last_name): (String, String) = customers::table
        .find(&row.customer_email)
        .select((customers::first_name, customers::last_name))
        .first(conn)?;
    let status = OrderStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("order {id} has unknown status {:?}", row.status)))?;
    let unit_price = match (row.unit_price_minor, row.currency) {
        (Some(amount_minor), Some(currency)) => Some(Money {
            amount_minor,
            currency,
        }),
        _ => None,
    };
    Ok(Some(OrderRecord {
        id,
        status,
        version: u64::try_from(row.version)
            .map_err(|_| corrupt(format!("order {id} has version {}", row.version)))?,
        details: OrderDetails {
            description: row.description,
            quantity: u32::try_from(row.quantity)
                .map_err(|_| corrupt(format!("order {id} has quantity {}", row.quantity)))?,
            unit_price,
            customer: CustomerDetails {
                email: row.customer_email,
                first_name,
                last_name,
            },
            created_at: row.created_at,
        },
    }))
}
