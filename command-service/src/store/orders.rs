use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use shared_events::EventEnvelope;
use uuid::Uuid;

use super::schema::{customers, orders};
use super::{outbox, Store, StoreError};
use crate::domain::PlacedOrder;

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
    created_at: DateTime<Utc>,
}

impl Store {
    /// Persists the order, the customer's latest names and the order's event in one
    /// transaction: either all three are committed or none is.
    pub async fn place_order(
        &self,
        order: PlacedOrder,
        event: EventEnvelope,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
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
                diesel::insert_into(orders::table)
                    .values(NewOrderRow {
                        id: order.id.as_uuid(),
                        customer_email: customer.email.as_str(),
                        description: order.order.description.as_str(),
                        quantity: i32::from(order.order.quantity.get()),
                        created_at: order.created_at,
                    })
                    .execute(conn)?;
                outbox::append(conn, &event)
            })
        })
        .await
    }
}
