use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared_events::{EventId, EventMetadata, OrderId};
use uuid::Uuid;

use super::ApiError;
use crate::domain::{
    Customer, Description, EmailAddress, NewOrder, PersonName, Quantity, ValidationErrors,
};
use crate::outbox::RelayWakeup;
use crate::store::Store;

const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The body of `POST /orders`, as the original API's clients send it. Each field is taken as
/// any JSON value so that a wrong type is reported against its field; unknown fields are
/// ignored, for clients that send more than this API needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderBody {
    description: Option<Value>,
    quantity: Option<Value>,
    first_name: Option<Value>,
    last_name: Option<Value>,
    email: Option<Value>,
}

fn string(value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(text)) => Ok(text),
        None => Err("is required".to_owned()),
        Some(_) => Err("must be a string".to_owned()),
    }
}

fn integer(value: Option<Value>) -> Result<i64, String> {
    match value {
        Some(Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| format!("must be a whole number, got {number}")),
        None => Err("is required".to_owned()),
        Some(_) => Err("must be a number".to_owned()),
    }
}

impl TryFrom<PlaceOrderBody> for NewOrder {
    type Error = ValidationErrors;

    fn try_from(body: PlaceOrderBody) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let description = errors.check(
            "description",
            string(body.description).and_then(Description::parse),
        );
        let quantity = errors.check("quantity", integer(body.quantity).and_then(Quantity::parse));
        let first_name = errors.check(
            "firstName",
            string(body.first_name).and_then(PersonName::parse),
        );
        let last_name = errors.check(
            "lastName",
            string(body.last_name).and_then(PersonName::parse),
        );
        let email = errors.check("email", string(body.email).and_then(EmailAddress::parse));
        match (description, quantity, first_name, last_name, email) {
            (Some(description), Some(quantity), Some(first_name), Some(last_name), Some(email)) => {
                Ok(NewOrder {
                    description,
                    quantity,
                    customer: Customer {
                        email,
                        first_name,
                        last_name,
                    },
                })
            }
            _ => Err(errors),
        }
    }
}

/// The caller's `X-Request-Id` when it is usable, otherwise a new one.
fn correlation_id(request: &HttpRequest) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID_CHARS)
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// `POST /orders`: validates, commits the order with its event, answers 202 with the id.
pub async fn place_order(
    request: HttpRequest,
    body: web::Json<PlaceOrderBody>,
    store: web::Data<Store>,
    relay: web::Data<RelayWakeup>,
) -> Result<HttpResponse, ApiError> {
    let new_order = NewOrder::try_from(body.into_inner()).map_err(ApiError::Validation)?;
    // PostgreSQL keeps microseconds; the event must carry the same instant as the row.
    let now = Utc::now().trunc_subsecs(6);
    let order = new_order.place(OrderId::from_uuid(Uuid::now_v7()), now);
    let event = order.on_new_order(EventMetadata {
        event_id: EventId::from_uuid(Uuid::now_v7()),
        occurred_at: now,
        correlation_id: correlation_id(&request),
    });
    let id = order.id;
    let email = order.order.customer.email.as_str().to_owned();
    store.place_order(order, event).await?;
    relay.wake();
    log::info!("accepted order {id} for {email}");
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/orders/{id}")))
        .json(json!({ "id": id, "status": "accepted" })))
}
