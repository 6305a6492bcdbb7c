use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::upsert::excluded;
use shared_events::{CustomerDetails, EventEnvelope, EventMetadata, Money, OrderDetails, OrderId};
use uuid::Uuid;

use super::schema::{customers, idempotency_keys, orders};
use super::{outbox, Store, StoreError};
use crate::domain::{
    CancelOrder, CancelRejection, IdempotencyKey, OrderRecord, OrderStatus, PlacedOrder,
};

#[derive(Insertable)]
#[diesel(table_name = customers)]
struct NewCustomerRow<'a> {
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
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
    /// Persists the order, the customer's latest names and the order's event in one
    /// transaction: either all three are committed or none is.
    ///
    /// With an idempotency key, the key is looked up first under a transaction-scoped lock
    /// of the key and recorded with the order, so however often (or however concurrently) a
    /// request is retried, one order is placed.
    pub async fn place_order(
        &self,
        order: PlacedOrder,
        event: EventEnvelope,
        key: Option<IdempotencyKey>,
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
                diesel::insert_into(customers::table)
                    .values(NewCustomerRow {
                        email: customer.email.as_str(),
                        first_name: customer.first_name.as_str(),
                        last_name: customer.last_name.as_str(),
                    })
                    .on_conflict(customers::email)
                    .do_update()
                    .set((
                        customers::first_name.eq(excluded(customers::first_name)),
                        customers::last_name.eq(excluded(customers::last_name)),
                        customers::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
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
                            idempotency_keys::key.eq(key.as_str()),
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
                let event = record.cancel(&command, cancelled_at, metadata)?;
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
    key: &IdempotencyKey,
    request: &serde_json::Value,
) -> Result<Option<Placement>, PlaceOrderError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(key.as_str())
        .execute(conn)?;
    let earlier: Option<(serde_json::Value, Uuid)> = idempotency_keys::table
        .find(key.as_str())
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
