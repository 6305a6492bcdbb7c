use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_support::auth::{Granted, Write};
use service_support::docs::{self, ErrorBody, QUERY_DOCUMENT_PATH};
use service_support::params::{whole_number, whole_number_pattern};
use service_support::traces::{self, TraceParent};
use service_support::RequestId;
use shared_events::{
    ConsistencyToken, EventId, EventMetadata, OrderId, CONSISTENCY_TOKEN_HEADER,
    FIRST_AGGREGATE_VERSION,
};
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::link::Link;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;
use uuid::Uuid;

use super::json::UniqueKeys;
use super::schemas::{IdempotencyKeyHeader, IfMatchHeader};
use super::{ApiError, BodyLimit};
use crate::domain::{
    CancelOrder, CancellationReason, CurrencyCode, Customer, Description, EmailAddress,
    IdempotencyKey, MinorUnits, NewOrder, OrderStatus, PersonName, Quantity, UnitPrice,
    ValidationErrors,
};
use crate::group_commit::OrderDesk;
use crate::store::{OrderPlacement, Placement, Store};

const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set on the answer to a retry that an idempotency key matched to an earlier order.
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The body of `POST /orders`, as the original API's clients send it. Each field is taken as
/// any JSON value so that a wrong type is reported against its field; unknown fields are
/// ignored, for clients that send more than this API needs. Only a JSON object is a body: read
/// through a map ([`UniqueKeys`]), so that serde's positional reading of an array is never
/// used. Its schema is in [`super::schemas`].
#[derive(Debug, Deserialize)]
#[serde(from = "UniqueKeys")]
pub struct PlaceOrderBody {
    description: Option<Value>,
    quantity: Option<Value>,
    first_name: Option<Value>,
    last_name: Option<Value>,
    email: Option<Value>,
    unit_price_minor: Option<Value>,
    currency: Option<Value>,
}

impl From<UniqueKeys> for PlaceOrderBody {
    fn from(UniqueKeys(mut fields): UniqueKeys) -> Self {
        // `null` counts as absent, as it does for an `Option` field.
        let mut take = |name: &str| fields.remove(name).filter(|value| !value.is_null());
        Self {
            description: take("description"),
            quantity: take("quantity"),
            first_name: take("firstName"),
            last_name: take("lastName"),
            email: take("email"),
            unit_price_minor: take("unitPriceMinor"),
            currency: take("currency"),
        }
    }
}

/// The body of `POST /orders/{id}/cancel`, its reason optional: a JSON object, read through a
/// map as [`PlaceOrderBody`] is. Its schema is in [`super::schemas`].
#[derive(Debug, Default, Deserialize)]
#[serde(from = "UniqueKeys")]
pub struct CancelOrderBody {
    reason: Option<Value>,
}

impl From<UniqueKeys> for CancelOrderBody {
    fn from(UniqueKeys(mut fields): UniqueKeys) -> Self {
        Self {
            reason: fields.remove("reason").filter(|value| !value.is_null()),
        }
    }
}

/// What every accepted command answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccepted {
    #[schema(value_type = String, format = Uuid)]
    id: OrderId,
    /// `accepted` for a new order, `cancelled` after a cancellation.
    status: &'static str,
    /// The order's version after the command, also given as `ETag`.
    version: u64,
    /// Present it to a read (`X-Consistency-Token` or `?consistencyToken=`) to see this
    /// command's effect.
    #[schema(example = "0193a4e2-7c1d-7b3a-9f00-5e8d1c2b4a6f.1")]
    consistency_token: String,
}

fn string(value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(text)) => Ok(text),
        None => Err("is required".to_owned()),
        Some(_) => Err("must be a string".to_owned()),
    }
}

/// A whole number, also when written with a zero fraction or an exponent (`2.0`, `1e3`), as
/// JSON Schema's `integer` counts them.
fn integer(value: Option<Value>) -> Result<i64, String> {
    match value {
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0 && float.abs() < 2f64.powi(63))
                    .map(|float| float as i64)
            })
            .ok_or_else(|| format!("must be a whole number, got {number}")),
        None => Err("is required".to_owned()),
        Some(_) => Err("must be a number".to_owned()),
    }
}

/// `unitPriceMinor` and `currency` come together or not at all.
fn unit_price(
    errors: &mut ValidationErrors,
    amount: Option<Value>,
    currency: Option<Value>,
) -> Option<UnitPrice> {
    let absent = |value: &Option<Value>| matches!(value, None | Some(Value::Null));
    match (absent(&amount), absent(&currency)) {
        (true, true) => None,
        (false, true) => {
            errors.check::<()>(
                "currency",
                Err("is required with unitPriceMinor".to_owned()),
            );
            None
        }
        (true, false) => {
            errors.check::<()>(
                "unitPriceMinor",
                Err("is required with currency".to_owned()),
            );
            None
        }
        (false, false) => {
            let amount = errors.check(
                "unitPriceMinor",
                integer(amount).and_then(MinorUnits::parse),
            );
            let currency = errors.check("currency", string(currency).and_then(CurrencyCode::parse));
            Some(UnitPrice {
                amount: amount?,
                currency: currency?,
            })
        }
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
        let unit_price = unit_price(&mut errors, body.unit_price_minor, body.currency);
        // `check` records an error for every `None`, so the second arm always has fields to name.
        match (description, quantity, first_name, last_name, email) {
            (Some(description), Some(quantity), Some(first_name), Some(last_name), Some(email))
                if errors.is_empty() =>
            {
                Ok(NewOrder {
                    description,
                    quantity,
                    unit_price,
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

/// The 202 every command answers: the order's location, its new version as `ETag` (for a
/// later `If-Match`), and the consistency token a read can present to see this command's
/// effect.
fn accepted(id: OrderId, version: u64, status: &'static str) -> HttpResponse {
    let token = ConsistencyToken {
        order_id: id,
        version,
    }
    .to_string();
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/orders/{id}")))
        .insert_header((header::ETAG, format!("\"{version}\"")))
        .insert_header((CONSISTENCY_TOKEN_HEADER, token.as_str()))
        .json(CommandAccepted {
            id,
            status,
            version,
            consistency_token: token,
        })
}

fn metadata(request_id: &RequestId, occurred_at: chrono::DateTime<Utc>) -> EventMetadata {
    EventMetadata {
        event_id: EventId::from_uuid(Uuid::now_v7()),
        occurred_at,
        correlation_id: request_id.to_string(),
    }
}

/// What every command may answer, documented once for all of them: the 202 with its headers
/// and links, and the errors that do not depend on the command.
pub struct CommandResponses;

impl utoipa::IntoResponses for CommandResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = docs::error_responses(&[
            (401, "No valid bearer token (auth enabled)"),
            (403, "The token lacks the orders:write scope"),
            (
                503,
                "PostgreSQL unavailable (`unavailable`), or lost during the commit, which may \
                 have happened (`outcome_unknown`): retry with the same Idempotency-Key; \
                 see Retry-After",
            ),
        ]);
        let mut etag = Header::default();
        etag.description = Some("The order's new version".to_owned());
        let cancel = Link::builder()
            .operation_id("cancel_order")
            .parameter("id", "$response.body#/id")
            .parameter("If-Match", "$response.header.ETag")
            .description("Cancel the order, if nobody changed it since")
            .build();
        // The reads are the query side's, in its document beside this one at the gateway;
        // the consistency token makes them wait until the order is projected.
        let read = |operation: &str, description: &str| {
            Link::builder()
                .operation_ref(format!("{QUERY_DOCUMENT_PATH}#/paths/{operation}/get"))
                .parameter("consistencyToken", "$response.body#/consistencyToken")
                .description(description)
        };
        let get_order = read("~1orders~1{id}", "Read the order once it is projected")
            .parameter("id", "$response.body#/id")
            .build();
        let accepted = ResponseBuilder::new()
            .description("Committed with its event")
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("CommandAccepted"))),
            )
            .header("Location", Header::default())
            .header("ETag", etag)
            .header(CONSISTENCY_TOKEN_HEADER, Header::default())
            .link("CancelOrder", cancel)
            .link("GetOrder", get_order)
            .build();
        responses.insert("202".to_owned(), RefOr::T(accepted));
        responses
    }
}

/// `POST /orders`: validates, commits the order with its event, answers 202 with the id.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderBody,
    summary = "Place an order",
    description = "Places an order. Send `Idempotency-Key` to retry safely: a retry with the \
                   same key and body answers the first answer (`Idempotent-Replayed: true`). \
                   To read the order back as soon as this answers, send the answer's \
                   `consistencyToken` with the read (its `consistencyToken` parameter or \
                   `X-Consistency-Token` header): the read waits until the order is there.",
    params(IdempotencyKeyHeader),
    responses(
        (status = 400, body = ErrorBody, description = "Malformed JSON or header"),
        CommandResponses,
        (status = 413, body = ErrorBody, description = "Body larger than http.max_body_bytes"),
        (status = 415, body = ErrorBody, description = "Not application/json"),
        (status = 422, body = ErrorBody,
            description = "Invalid fields (`fields` names each), or an Idempotency-Key reused"),
    ),
    security(("bearer" = ["orders:write"])),
)]
#[post("/orders")]
pub async fn place_order(
    granted: Granted<Write>,
    request: HttpRequest,
    body: web::Json<PlaceOrderBody>,
    desk: web::Data<OrderDesk>,
) -> Result<HttpResponse, ApiError> {
    super::require_utf8(&request)?;
    let new_order = NewOrder::try_from(body.into_inner()).map_err(ApiError::Validation)?;
    let placement = OrderPlacement::new(
        new_order,
        granted.principal().scope_name().to_owned(),
        idempotency_key(&request)?,
        RequestId::of(&request).to_string(),
    )
    .with_trace_parent(TraceParent::current_sampled());
    // "accepted" is what the original API answered; clients may depend on it.
    let placed = traces::in_span("group commit", desk.place(placement)).await?;
    let id = match placed {
        Placement::Placed(id) | Placement::Replayed(id) => id,
    };
    traces::annotate("order.id", id);
    match placed {
        Placement::Placed(id) => {
            log::info!("accepted order {id}");
            Ok(accepted(id, FIRST_AGGREGATE_VERSION, "accepted"))
        }
        Placement::Replayed(id) => {
            log::info!("idempotent retry of order {id}");
            let mut response = accepted(id, FIRST_AGGREGATE_VERSION, "accepted");
            response.headers_mut().insert(
                header::HeaderName::from_static(REPLAYED_HEADER),
                header::HeaderValue::from_static("true"),
            );
            Ok(response)
        }
    }
}

/// `POST /orders/{id}/cancel` with an optional `{"reason": …}` and an optional `If-Match`.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", summary = "Cancel an order",
    description = "Cancels the order. With `If-Match` (the version a read's `ETag` gave), only \
                   if nobody changed the order since. The answer's `consistencyToken` lets a read \
                   wait until the cancellation shows, as after placing.",
    request_body(content = CancelOrderBody, content_type = "application/json",
        description = "`{}` or empty for no reason; always sent as `application/json`"),
    params(
        ("id" = String, Path, format = Uuid, description = "The order's id"),
        IfMatchHeader,
    ),
    responses(
        (status = 400, body = ErrorBody, description = "Malformed id, JSON or If-Match"),
        CommandResponses,
        (status = 404, body = ErrorBody, description = "No such order, or another principal's"),
        (status = 409, body = ErrorBody, description = "Already cancelled"),
        (status = 412, body = ErrorBody,
            description = "If-Match names another version; `currentVersion` and ETag give it"),
        (status = 415, body = ErrorBody, description = "Not sent as application/json"),
        (status = 422, body = ErrorBody, description = "Invalid reason"),
    ),
    security(("bearer" = ["orders:write"])),
)]
#[post("/orders/{id}/cancel")]
pub async fn cancel_order(
    granted: Granted<Write>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
    store: web::Data<Store>,
    limit: web::Data<BodyLimit>,
) -> Result<HttpResponse, ApiError> {
    let order_id: OrderId = id.parse().map_err(|_| ApiError::InvalidParameter {
        name: "id",
        message: "must be an order id (a UUID)".to_owned(),
    })?;
    super::require_utf8(&request)?;
    let body = read_cancel_body(&request, body, limit.0).await?;
    traces::annotate("order.id", order_id);
    let mut errors = ValidationErrors::default();
    let reason = match body.reason {
        None => None,
        reason => errors.check("reason", string(reason).and_then(CancellationReason::parse)),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let command = CancelOrder {
        order_id,
        principal: granted.principal().scope_name().to_owned(),
        reason,
        expected_version: expected_version(&request)?,
    };
    let now = Utc::now().trunc_subsecs(6);
    let event = store
        .cancel_order(
            command,
            now,
            metadata(&RequestId::of(&request), now),
            TraceParent::current_sampled(),
        )
        .await?;
    log::info!("cancelled order {order_id}");
    Ok(accepted(
        event.aggregate_id,
        event.aggregate_version,
        OrderStatus::Cancelled.as_str(),
    ))
}

/// The request must be sent as JSON (`Content-Type: application/json`), body or not: a
/// browser sends that type across sites only after a CORS preflight, so a plain form on
/// another site cannot cancel an order. The body is optional: empty or `null` means no
/// reason; otherwise it is a JSON object.
async fn read_cancel_body(
    request: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<CancelOrderBody, ApiError> {
    let is_json = request.mime_type().ok().flatten().is_some_and(|mime| {
        mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
    });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = body
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit: Some(limit) })?
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CancelOrderBody::default());
    }
    serde_json::from_slice::<Option<CancelOrderBody>>(&bytes)
        .map(Option::unwrap_or_default)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))
}

/// The `Idempotency-Key` header, if the client sent one.
fn idempotency_key(request: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    if request
        .headers()
        .get_all(IDEMPOTENCY_KEY_HEADER)
        .nth(1)
        .is_some()
    {
        return Err(ApiError::InvalidHeader {
            name: "Idempotency-Key",
            message: "must be given once".to_owned(),
        });
    }
    request
        .headers()
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|value| {
            IdempotencyKey::parse(value.to_str().unwrap_or_default()).map_err(|message| {
                ApiError::InvalidHeader {
                    name: "Idempotency-Key",
                    message,
                }
            })
        })
        .transpose()
}

/// The pattern of what `If-Match` may be: `*` (any version), or the version as `ETag` gives it (`"3"`), also
/// weak (`W/"3"`) or bare (`3`).
pub fn if_match_pattern() -> String {
    let version = whole_number_pattern();
    format!(r#"^(\*|(W/)?"{version}"|{version})$"#)
}

fn quoted(tag: &str) -> Option<&str> {
    tag.strip_prefix('"')?.strip_suffix('"')
}

/// The version named by `If-Match` ([`if_match_pattern`]); none for `*` or no header.
fn expected_version(request: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let version = match text.strip_prefix("W/") {
        Some(weak) => quoted(weak),
        None => quoted(text).or(Some(text)),
    };
    version
        .and_then(whole_number)
        .map(Some)
        .ok_or_else(|| ApiError::InvalidHeader {
            name: "If-Match",
            message: format!(
                "must be one entity tag with the order's version, such as \"2\", got {text:?}"
            ),
        })
}
