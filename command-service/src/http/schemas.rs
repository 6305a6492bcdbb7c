//! The request schemas of the command side's OpenAPI document, built from the domain's rules
//! (their limits and the patterns of their character rules), so that the document cannot say
//! other than what the handlers enforce.

use std::borrow::Cow;

use serde_json::json;
use service_support::docs::{integer_schema, or_null, parameter, string_schema};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::orders::{CancelOrderBody, PlaceOrderBody};
use crate::domain::{
    name_pattern, text_pattern, CurrencyCode, IdempotencyKey, MAX_DESCRIPTION_CHARS,
    MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_REASON_CHARS, QUANTITY_RANGE, UNIT_PRICE_RANGE,
};

fn text(max_chars: usize, description: &str, example: &str) -> ObjectBuilder {
    string_schema(text_pattern(), Some(max_chars))
        .description(Some(format!(
            "{description}: 1 to {max_chars} characters on one line, not only blanks, no \
             control, bidirectional-control, invisible, private-use or noncharacter"
        )))
        .examples([json!(example)])
}

fn name(description: &str, example: &str) -> ObjectBuilder {
    string_schema(name_pattern(), Some(MAX_NAME_CHARS))
        .description(Some(format!(
            "{description}: as any text field, 1 to {MAX_NAME_CHARS} characters, with a letter"
        )))
        .examples([json!(example)])
}

/// The fields every order has, required, with `price` (the price fields) added.
fn order_with(
    title: &str,
    price: [(&str, ObjectBuilder); 2],
    price_required: bool,
) -> ObjectBuilder {
    let mut order = ObjectBuilder::new()
        .title(Some(title))
        .property(
            "description",
            text(MAX_DESCRIPTION_CHARS, "What was ordered", "Blue mug"),
        )
        .property(
            "quantity",
            integer_schema(QUANTITY_RANGE).examples([json!(2)]),
        )
        .property("firstName", name("First name", "Ada"))
        .property("lastName", name("Last name", "Lovelace"))
        .property(
            "email",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("email".to_owned())))
                .max_length(Some(MAX_EMAIL_CHARS))
                .description(Some(
                    "A bare address; stored trimmed, lower-cased, with the domain in ASCII \
                     (IDNA)",
                ))
                .examples([json!("ada@example.com")]),
        )
        .required("description")
        .required("quantity")
        .required("firstName")
        .required("lastName")
        .required("email");
    for (name, schema) in price {
        order = order.property(name, schema);
        if price_required {
            order = order.required(name);
        }
    }
    order
}

/// The variant of [`PlaceOrderBody`] without a price.
pub struct OrderWithoutPrice;

/// The variant of [`PlaceOrderBody`] with a unit price and its currency.
pub struct OrderWithPrice;

impl PartialSchema for OrderWithoutPrice {
    fn schema() -> RefOr<Schema> {
        let null = || {
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some("Absent or null: the order has no price"))
        };
        order_with(
            "Order without a price",
            [("unitPriceMinor", null()), ("currency", null())],
            false,
        )
        .into()
    }
}

impl ToSchema for OrderWithoutPrice {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OrderWithoutPrice")
    }
}

impl PartialSchema for OrderWithPrice {
    fn schema() -> RefOr<Schema> {
        order_with(
            "Order with a unit price",
            [
                (
                    "unitPriceMinor",
                    integer_schema(UNIT_PRICE_RANGE)
                        .description(Some(
                            "The price of one unit in the currency's minor units (cents)",
                        ))
                        .examples([json!(1250)]),
                ),
                (
                    "currency",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(CurrencyCode::active_codes()))
                        .description(Some("An active ISO 4217 code, upper-case"))
                        .examples([json!("EUR")]),
                ),
            ],
            true,
        )
        .into()
    }
}

impl ToSchema for OrderWithPrice {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OrderWithPrice")
    }
}

impl PartialSchema for PlaceOrderBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(OrderWithoutPrice::name()))
            .item(Ref::from_schema_name(OrderWithPrice::name()))
            .description(Some(
                "The order, as the original API's clients send it; other fields are ignored. \
                 A price is the unit price and its currency together, or neither.",
            ))
            .into()
    }
}

impl ToSchema for PlaceOrderBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PlaceOrderBody")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            OrderWithoutPrice::name().into(),
            OrderWithoutPrice::schema(),
        ));
        schemas.push((OrderWithPrice::name().into(), OrderWithPrice::schema()));
    }
}

impl PartialSchema for CancelOrderBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "reason",
                or_null(text(MAX_REASON_CHARS, "Why", "ordered twice"), Type::String),
            )
            .description(Some("Optional; other fields are ignored"))
            .into()
    }
}

impl ToSchema for CancelOrderBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CancelOrderBody")
    }
}

/// The `Idempotency-Key` header of `POST /orders`.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "Idempotency-Key",
            ParameterIn::Header,
            "Visible ASCII characters, such as a UUID: a retry with the same key and body \
             answers the first answer",
            string_schema(IdempotencyKey::pattern(), None),
        )]
    }
}

/// The `If-Match` header of a cancellation.
pub struct IfMatchHeader;

impl IntoParams for IfMatchHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "If-Match",
            ParameterIn::Header,
            "The version the cancellation expects, as ETag gives it (\"1\"); `*` for any",
            string_schema(super::orders::if_match_pattern(), None),
        )]
    }
}
