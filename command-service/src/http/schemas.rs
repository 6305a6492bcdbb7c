//! The request schemas of the command side's OpenAPI document, built from the domain's rules
//! (their limits and the patterns of their character rules), so that the document cannot say
//! other than what the handlers enforce.

use std::borrow::Cow;

use serde_json::json;
use service_support::docs::{integer_schema, or_null, parameter, string_schema};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::orders::{CancelOrderBody, PlaceOrderBody};
use crate::domain::{
    text_pattern, CurrencyCode, IdempotencyKey, MAX_DESCRIPTION_CHARS, MAX_EMAIL_CHARS,
    MAX_NAME_CHARS, MAX_REASON_CHARS, QUANTITY_RANGE, UNIT_PRICE_RANGE,
};

fn text(max_chars: usize, description: &str, example: &str) -> ObjectBuilder {
    string_schema(text_pattern(), Some(max_chars))
        .description(Some(format!(
            "{description}: 1 to {max_chars} characters on one line, not only blanks, no \
             control or bidirectional-control characters"
        )))
        .examples([json!(example)])
}

impl PartialSchema for PlaceOrderBody {
    fn schema() -> RefOr<Schema> {
        let fields = ObjectBuilder::new()
            .property(
                "description",
                text(MAX_DESCRIPTION_CHARS, "What was ordered", "Blue mug"),
            )
            .property(
                "quantity",
                integer_schema(QUANTITY_RANGE).examples([json!(2)]),
            )
            .property("firstName", text(MAX_NAME_CHARS, "First name", "Ada"))
            .property("lastName", text(MAX_NAME_CHARS, "Last name", "Lovelace"))
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
            .property(
                "unitPriceMinor",
                or_null(integer_schema(UNIT_PRICE_RANGE), Type::Integer)
                    .description(Some(
                        "The price of one unit in the currency's minor units (cents); with \
                         `currency`",
                    ))
                    .examples([json!(1250)]),
            )
            .property(
                "currency",
                or_null(string_schema(CurrencyCode::pattern(), None), Type::String)
                    .description(Some("ISO 4217 code; with `unitPriceMinor`"))
                    .examples([json!("EUR")]),
            )
            .required("description")
            .required("quantity")
            .required("firstName")
            .required("lastName")
            .required("email");
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let price_with_currency = AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property("unitPriceMinor", null())
                    .property("currency", null()),
            )
            .item(
                ObjectBuilder::new()
                    .property(
                        "unitPriceMinor",
                        ObjectBuilder::new().schema_type(Type::Integer),
                    )
                    .property("currency", ObjectBuilder::new().schema_type(Type::String))
                    .required("unitPriceMinor")
                    .required("currency"),
            );
        AllOfBuilder::new()
            .item(fields)
            .item(price_with_currency)
            .description(Some(
                "The order, as the original API's clients send it; other fields are ignored. \
                 `unitPriceMinor` and `currency` come together or not at all.",
            ))
            .into()
    }
}

impl ToSchema for PlaceOrderBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PlaceOrderBody")
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
