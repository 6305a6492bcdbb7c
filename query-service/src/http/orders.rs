use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_support::auth::{Granted, Read};
use service_support::chars::{self, CONTROL};
use service_support::docs::{parameter, string_schema, ErrorBody};
use shared_events::OrderId;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::{IntoParams, ToSchema};

use super::consistency::{ConsistentRead, TokenParameter, READ_YOUR_WRITES};
use super::paging::{page_response, PageParams, Paging};
use super::{whose, ApiError, OwnerParam, ReadErrors};
use crate::read_models::{OrderDocument, PriceDocument};
use crate::store::{OrderListing, ReadStore};

/// An order as the API returns it, with its customer embedded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    id: String,
    /// Who placed the order and owns it: the subject of the token it was placed with (`""`
    /// while auth is off).
    owner: String,
    description: String,
    quantity: i64,
    /// `null` for an order placed without a price (a price is optional).
    unit_price: Option<PriceView>,
    status: String,
    customer: CustomerRef,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    cancellation_reason: Option<String>,
    version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PriceView {
    amount_minor: i64,
    currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CustomerRef {
    email: String,
    first_name: String,
    last_name: String,
}

fn utc(time: mongodb::bson::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or_default()
}

impl From<OrderDocument> for OrderView {
    fn from(order: OrderDocument) -> Self {
        Self {
            id: order.id,
            owner: order.owner,
            description: order.description,
            quantity: order.quantity,
            unit_price: order.unit_price.map(
                |PriceDocument {
                     amount_minor,
                     currency,
                 }| {
                    PriceView {
                        amount_minor,
                        currency,
                    }
                },
            ),
            status: order.status,
            customer: CustomerRef {
                email: order.customer.email,
                first_name: order.customer.first_name,
                last_name: order.customer.last_name,
            },
            created_at: utc(order.created_at),
            cancelled_at: order.cancelled_at.map(utc),
            cancellation_reason: order.cancellation_reason,
            version: order.version,
        }
    }
}

/// The query of `GET /orders`: documented by [`CustomerFilter`], [`OwnerParam`] and
/// [`Paging`].
#[derive(Debug, Deserialize)]
pub struct ListParams {
    email: Option<String>,
    #[serde(flatten)]
    owner: OwnerParam,
    #[serde(flatten)]
    page: PageParams,
}

/// The `email` filter of `GET /orders`.
pub struct CustomerFilter;

impl IntoParams for CustomerFilter {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "email",
            ParameterIn::Query,
            "Only the orders of the customer with this email (the caller's, or `owner`'s); \
             matched trimmed, lower-cased, domain in ASCII (IDNA)",
            email_parameter_schema(),
        )]
    }
}

/// The `{email}` of a customer's path.
#[derive(Debug, Deserialize)]
pub struct EmailPath {
    pub email: String,
}

impl IntoParams for EmailPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "email",
            ParameterIn::Path,
            "The customer's email (the caller's customer, or `owner`'s); matched trimmed, \
             lower-cased, domain in ASCII (IDNA)",
            email_parameter_schema().min_length(Some(1)),
        )]
    }
}

/// `GET /orders?limit=&cursor=&email=` (or `offset=` for the first 10 000): newest first.
#[utoipa::path(get, path = "/orders", operation_id = "list_orders", summary = "List the caller's orders (every owner's with orders:read-all), newest first", description = READ_YOUR_WRITES, tag = "orders", params(CustomerFilter, OwnerParam, Paging, TokenParameter),
    responses(
        (status = 200, body = Vec<OrderView>, description = "Newest first"),
        ReadErrors,
    ),
    security(("bearer" = ["orders:read"])),
)]
#[get("/orders")]
pub async fn list(
    granted: Granted<Read>,
    read: ConsistentRead,
    request: HttpRequest,
    params: web::Query<ListParams>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let page = params.page.page()?;
    let email = params.email.as_deref().map(email_parameter).transpose()?;
    let listing = match &email {
        None => OrderListing::Of(params.owner.listing(&granted)?),
        Some(email) => OrderListing::OfCustomer {
            owner: params.owner.of_customer(&granted)?,
            email,
        },
    };
    let listing = store
        .list_orders(listing, &page, read.awaited_order())
        .await?;
    let mut extra: Vec<(&str, &str)> = email
        .iter()
        .map(|email| ("email", email.as_str()))
        .collect();
    extra.extend(params.owner.link_params());
    Ok(page_response(
        &request,
        &page,
        &extra,
        listing.items.into_iter().map(OrderView::from).collect(),
        listing.next,
    ))
}

/// `GET /orders/{id}`, with the version as `ETag` for a later command's `If-Match`.
#[utoipa::path(get, path = "/orders/{id}", operation_id = "get_order", summary = "Get an order", description = READ_YOUR_WRITES, tag = "orders",
    params(("id" = String, Path, format = Uuid, description = "The order's id"), TokenParameter),
    responses(
        (status = 200, body = OrderView, description = "The order", headers(("ETag" = String,
            description = "The order's version, for a cancellation's If-Match"))),
        (status = 404, body = ErrorBody,
            description = "No such order (yet), or another owner's (without orders:read-all)"),
        ReadErrors,
    ),
    security(("bearer" = ["orders:read"])),
)]
#[get("/orders/{id}")]
pub async fn get(
    granted: Granted<Read>,
    _: ConsistentRead,
    id: web::Path<String>,
    store: web::Data<ReadStore>,
) -> Result<HttpResponse, ApiError> {
    let id: OrderId = id.parse().map_err(|_| ApiError::InvalidParameter {
        name: "id",
        message: "must be an order id (a UUID)".to_owned(),
    })?;
    let order = store
        .find_order(&id.to_string())
        .await?
        .filter(|order| whose(&granted).sees(&order.owner))
        .ok_or(ApiError::NotFound("order"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", order.version)))
        .json(OrderView::from(order)))
}

/// An email given in the path or query, in the spelling the command side stores
/// ([`shared_events::normalise_email`]). Control characters (a NUL, which the read store refuses, among them) can be in
/// no stored email, so they are a client's mistake, answered 400.
pub fn email_parameter(email: &str) -> Result<String, ApiError> {
    if email.chars().any(|c| chars::contains(CONTROL, c)) {
        return Err(ApiError::InvalidParameter {
            name: "email",
            message: "must not contain control characters".to_owned(),
        });
    }
    Ok(shared_events::normalise_email(email))
}

/// The schema of what [`email_parameter`] accepts.
fn email_parameter_schema() -> ObjectBuilder {
    string_schema(chars::pattern_without(&[CONTROL]), None)
}
