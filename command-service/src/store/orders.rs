use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use service_support::traces::TraceParent;
use shared_events::{
    CustomerDetails, CustomerSummary, EventEnvelope, EventMetadata, ListPositions, Money,
    OrderDetails, OrderId, OwnerPositions,
};

use super::schema::{customers, orders};
use super::{corrupt, in_transaction, outbox, unsigned, Store, StoreError};
use crate::domain::{CancelOrder, CancelRejection, OrderRecord, OrderStatus};
use crate::outbox::Reservation;

/// A customer's summary as the transaction that changed it left it.
#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = customers)]
pub(super) struct CustomerSummaryRow {
    pub(super) email: String,
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
        let count = |value: i64, name: &str| unsigned(value, || format!("a customer's {name}"));
        Ok(Self {
            version: count(row.summary_version, "summary version")?,
            placed_order_count: count(row.placed_order_count, "placed order count")?,
            placed_quantity: count(row.placed_quantity, "placed quantity")?,
            cancelled_order_count: count(row.cancelled_order_count, "cancelled order count")?,
            cancelled_quantity: count(row.cancelled_quantity, "cancelled quantity")?,
            last_order_at: row
                .last_order_at
                .ok_or_else(|| corrupt("a customer with a summary has no order".to_owned()))?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    owner: String,
    status: String,
    version: i64,
    customer_email: String,
    description: String,
    quantity: i32,
    unit_price_minor: Option<i64>,
    currency: Option<String>,
    created_at: DateTime<Utc>,
    list_position: i64,
    customer_order: i64,
    owner_position: i64,
}

/// Why a cancellation was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CancelOrderError {
    /// None with that id, or another principal's.
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

impl Store {
    /// Cancels an order of the command's principal: locks its row, lets the domain decide, and
    /// commits the new state with the `OrderCancelled` event, or nothing. Another principal's
    /// order is not found. Concurrent commands on one order are serialised by the row lock, so
    /// exactly one of two racing cancellations succeeds.
    pub async fn cancel_order(
        &self,
        command: CancelOrder,
        cancelled_at: DateTime<Utc>,
        metadata: EventMetadata,
        trace_parent: Option<TraceParent>,
    ) -> Result<EventEnvelope, CancelOrderError> {
        let reservation = self.handoff.reserve();
        let claimed_for = reservation.as_ref().map(Reservation::lease);
        let (event, appended) = self
            .run(move |conn| {
                in_transaction(conn, |conn| {
                    let record = lock_order(conn, command.order_id, &command.principal)?
                        .ok_or(CancelOrderError::NotFound)?;
                    // Counted before the domain decides: a rejection rolls the count back with the
                    // rest of the transaction.
                    let customer = (&record.owner, &record.details.customer.email);
                    let summary: CustomerSummary = diesel::update(customers::table.find(customer))
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
                    let appended =
                        outbox::append(conn, &event, trace_parent.as_ref(), claimed_for)?;
                    Ok::<_, CancelOrderError>((event, appended))
                })
            })
            .await?;
        self.handoff.committed(reservation, appended);
        Ok(event)
    }
}

/// Loads the order if `owner` owns it, and locks its row until the transaction ends.
fn lock_order(
    conn: &mut PgConnection,
    id: OrderId,
    owner: &str,
) -> Result<Option<OrderRecord>, CancelOrderError> {
    let Some(row) = orders::table
        .find(id.as_uuid())
        .filter(orders::owner.eq(owner))
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let (first_name, last_name, customer_position, owner_customer_position): (
        String,
        String,
        i64,
        i64,
    ) = customers::table
        .find((&row.owner, &row.customer_email))
        .select((
            customers::first_name,
            customers::last_name,
            customers::list_position,
            customers::owner_position,
        ))
        .first(conn)?;
    let position = |value: i64| unsigned(value, || format!("a list position of order {id}"));
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
        owner: row.owner,
        status,
        version: unsigned(row.version, || format!("the version of order {id}"))?,
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
        list_positions: ListPositions {
            order: position(row.list_position)?,
            customer: position(customer_position)?,
            customer_order: position(row.customer_order)?,
        },
        owner_positions: OwnerPositions {
            order: position(row.owner_position)?,
            customer: position(owner_customer_position)?,
        },
    }))
}
