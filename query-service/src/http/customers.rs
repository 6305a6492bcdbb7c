use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::consistency::ConsistentRead;
use super::orders::{normalise_email, OrderView};
use super::paging::{page_response, PageParams};
use super::ApiError;
use crate::store::{CustomerDocument, Page, ReadStore};

/// A customer with the summary of their orders. `orderCount` and `totalQuantity` count live
/// orders only; cancelled ones are counted apart.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    email: String,
    first_name: String,
    last_name: String,
    order_count: i64,
    total_quantity: i64,
    cancelled_order_count: i64,
    last_order_at: DateTime<Utc>,
}

impl From<CustomerDocument> for CustomerView {
    fn from(customer: CustomerDocument) -> Self {
        Self {
            email: customer.email,
            first_name: customer.first_name,
            last_name: customer.last_name,
            order_count: customer.placed_order_count - customer.cancelled_order_count,
            total_quantity: customer.placed_quantity - customer.cancelled_quantity,
            cancelled_order_count: customer.cancelled_order_count,
            last_order_at: DateTime::from_timestamp_millis(
                customer.last_order_at.timestamp_millis(),
            )
            .unwrap_or_default(),
        }
    }
}

/// `GET /customers?limit=&offset=`: in email order.
pub async fn list(
    _: ConsistentRead,
    request: HttpRequest,
    params: web::Query<PageParams>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::try_from(&*params)?;
    let customers = store.list_customers(page).await?;
    Ok(page_response(
        &request,
        page,
        &[],
        customers.into_iter().map(CustomerView::from).collect(),
    ))
}

/// `GET /customers/{email}`.
pub async fn get(
    _: ConsistentRead,
    email: web::Path<String>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let customer = store
        .find_customer(&normalise_email(&email))
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(HttpResponse::Ok().json(CustomerView::from(customer)))
}

/// `GET /customers/{email}/orders?limit=&offset=`: that customer's orders, newest first.
pub async fn orders(
    _: ConsistentRead,
    request: HttpRequest,
    email: web::Path<String>,
    params: web::Query<PageParams>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::try_from(&*params)?;
    let email = normalise_email(&email);
    if store.find_customer(&email).await?.is_none() {
        return Err(ApiError::NotFound("customer"));
    }
    let orders = store.list_orders(Some(&email), page).await?;
    Ok(page_response(
        &request,
        page,
        &[],
        orders.into_iter().map(OrderView::from).collect(),
    ))
}
