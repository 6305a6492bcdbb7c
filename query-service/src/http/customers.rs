use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use service_support::auth::{Granted, Read};
use service_support::docs::ErrorBody;
use utoipa::ToSchema;

use super::consistency::{ConsistentRead, TokenParameter, READ_YOUR_WRITES};
use super::orders::{email_parameter, EmailPath, OrderView};
use super::paging::{page_response, PageParams, Paging};
use super::{ApiError, OwnerParam, ReadErrors};
use crate::read_models::SummaryDocument;
use crate::store::ReadStore;

/// A customer with the summary of their orders. `orderCount` and `totalQuantity` count live
/// orders only; cancelled ones are counted apart.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    /// Whose customer this is: the owner of the orders counted here (a customer is an email
    /// under one owner).
    owner: String,
    email: String,
    first_name: String,
    last_name: String,
    order_count: i64,
    total_quantity: i64,
    cancelled_order_count: i64,
    last_order_at: DateTime<Utc>,
}

impl From<SummaryDocument> for CustomerView {
    fn from(customer: SummaryDocument) -> Self {
        let summary = customer.summary;
        Self {
            owner: customer.owner,
            email: customer.customer_email,
            first_name: customer.first_name,
            last_name: customer.last_name,
            order_count: summary.placed_order_count - summary.cancelled_order_count,
            total_quantity: summary.placed_quantity - summary.cancelled_quantity,
            cancelled_order_count: summary.cancelled_order_count,
            last_order_at: DateTime::from_timestamp_millis(
                summary.last_order_at.timestamp_millis(),
            )
            .unwrap_or_default(),
        }
    }
}

/// `GET /customers?limit=&cursor=` (or `offset=` for the first 10 000): in the order of
/// their first orders.
#[utoipa::path(get, path = "/customers", operation_id = "list_customers", summary = "List the caller's customers (every owner's with orders:read-all), in the order of their first orders", description = READ_YOUR_WRITES, tag = "customers", params(OwnerParam, Paging, TokenParameter),
    responses(
        (status = 200, body = Vec<CustomerView>, description = "In the order of their first orders"),
        ReadErrors,
    ),
    security(("bearer" = ["orders:read"])),
)]
#[get("/customers")]
pub async fn list(
    granted: Granted<Read>,
    read: ConsistentRead,
    request: HttpRequest,
    params: web::Query<PageParams>,
    owner: web::Query<OwnerParam>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let page = params.page()?;
    let listing = store
        .list_customers(owner.listing(&granted)?, &page, read.awaited_order())
        .await?;
    Ok(page_response(
        &request,
        &page,
        &owner.link_params(),
        listing.items.into_iter().map(CustomerView::from).collect(),
        listing.next,
    ))
}

/// `GET /customers/{email}`.
#[utoipa::path(get, path = "/customers/{email}", operation_id = "get_customer", summary = "Get the summary of one of the caller's customers", description = READ_YOUR_WRITES, tag = "customers",
    params(EmailPath, OwnerParam, TokenParameter),
    responses(
        (status = 200, body = CustomerView, description = "The customer's summary"),
        (status = 404, body = ErrorBody, description = "No such customer (yet)"),
        ReadErrors,
    ),
    security(("bearer" = ["orders:read"])),
)]
#[get("/customers/{email}")]
pub async fn get(
    granted: Granted<Read>,
    read: ConsistentRead,
    path: web::Path<EmailPath>,
    owner: web::Query<OwnerParam>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let customer = store
        .find_customer(
            owner.of_customer(&granted)?,
            &email_parameter(&path.email)?,
            read.awaited_order(),
        )
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(HttpResponse::Ok().json(CustomerView::from(customer)))
}

/// `GET /customers/{email}/orders?limit=&cursor=`: that customer's orders, newest first.
#[utoipa::path(get, path = "/customers/{email}/orders", operation_id = "list_customer_orders", summary = "List the orders of one of the caller's customers, newest first", description = READ_YOUR_WRITES, tag = "customers",
    params(EmailPath, OwnerParam, Paging, TokenParameter),
    responses(
        (status = 200, body = Vec<OrderView>, description = "Newest first"),
        (status = 404, body = ErrorBody, description = "No such customer (yet)"),
        ReadErrors,
    ),
    security(("bearer" = ["orders:read"])),
)]
#[get("/customers/{email}/orders")]
pub async fn orders(
    granted: Granted<Read>,
    read: ConsistentRead,
    request: HttpRequest,
    path: web::Path<EmailPath>,
    params: web::Query<PageParams>,
    owner: web::Query<OwnerParam>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let page = params.page()?;
    let email = email_parameter(&path.email)?;
    let listing = store
        .list_customer_orders(
            owner.of_customer(&granted)?,
            &email,
            &page,
            read.awaited_order(),
        )
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(page_response(
        &request,
        &page,
        &owner.link_params(),
        listing.items.into_iter().map(OrderView::from).collect(),
        listing.next,
    ))
}
