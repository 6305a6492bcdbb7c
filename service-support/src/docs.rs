//! The OpenAPI documents and the docs page. Each service serves its own document, generated
//! from its handlers, at `/openapi/<service>.json`; the gateway routes both paths and the
//! Swagger UI (`/docs/`, served from files compiled into the query service, no CDN), which
//! shows the two documents side by side.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::content::Content;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr, Required};
use utoipa::{Modify, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

pub const COMMAND_DOCUMENT_PATH: &str = "/openapi/command.json";
pub const QUERY_DOCUMENT_PATH: &str = "/openapi/query.json";
/// Where the query-service serves the events' AsyncAPI document (`shared_events::asyncapi`).
pub const EVENTS_DOCUMENT_PATH: &str = "/asyncapi/events.json";
/// The name operations use in `security(("bearer" = [...]))`.
pub const BEARER_SCHEME: &str = "bearer";

/// Adds the bearer (JWT) security scheme that operations refer to.
pub struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Required when the service runs with auth.enabled; the scope is named \
                         per operation.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `validation_failed`.
    #[schema(example = "validation_failed")]
    pub error: String,
    /// For people.
    pub message: String,
}

/// Error answers, each with an [`ErrorBody`], for a `utoipa::IntoResponses` impl that lists
/// the errors many operations share: `(status, description)` pairs.
pub fn error_responses(errors: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    errors
        .iter()
        .map(|(status, description)| {
            let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", body)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Removes every operation's security requirement and the security schemes: the document of
/// a service that runs with auth disabled.
pub fn without_security(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
            &mut item.query,
        ]
        .into_iter()
        .flatten()
        {
            operation.security = None;
        }
    }
    if let Some(components) = document.components.as_mut() {
        components.security_schemes.clear();
    }
}

/// A parameter of `location` (required in the path, optional elsewhere) whose value `schema`
/// describes.
pub fn parameter(
    name: &str,
    location: ParameterIn,
    description: &str,
    schema: ObjectBuilder,
) -> Parameter {
    let required = if location == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(required)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// A string whose whole value matches `pattern`, of at most `max_chars` characters: the
/// schema of a rule whose code builds `pattern` too.
pub fn string_schema(pattern: String, max_chars: Option<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(max_chars)
}

/// A whole number in `range`.
pub fn integer_schema(range: RangeInclusive<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(*range.start()))
        .maximum(Some(*range.end()))
}

/// `schema`, or `null` in its place: an optional field a client may send as `null`.
pub fn or_null(schema: ObjectBuilder, schema_type: Type) -> ObjectBuilder {
    schema.schema_type(SchemaType::Array(vec![schema_type, Type::Null]))
}

/// A service's OpenAPI document, rendered once at start-up; serving it copies no bytes.
#[derive(Debug, Clone)]
pub struct OpenApiJson(web::Bytes);

impl OpenApiJson {
    pub fn render(document: &OpenApi) -> Result<Self, serde_json::Error> {
        document.to_json().map(|json| Self(web::Bytes::from(json)))
    }
}

/// Serves the document held in the app data.
pub async fn serve_document(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// The events' AsyncAPI document, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct AsyncApiJson(web::Bytes);

impl AsyncApiJson {
    pub fn render(document: &serde_json::Value) -> Self {
        Self(web::Bytes::from(document.to_string()))
    }
}

/// Serves the AsyncAPI document held in the app data.
pub async fn serve_events_document(document: web::Data<AsyncApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// The OpenAPI document of a service: `api`'s description with every route that `routes`
/// registers (each handler documents itself), and the request-id header on every path.
pub fn document_of(api: OpenApi, routes: fn(&mut ServiceConfig)) -> OpenApi {
    let (_, mut document) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(api)
        .configure(routes)
        .split_for_parts();
    document_request_id(&mut document);
    document
}

/// Documents the `X-Request-Id` header on every path of `document`: every route takes it and
/// answers it (see [`crate::telemetry`]).
fn document_request_id(document: &mut OpenApi) {
    let header = parameter(
        "X-Request-Id",
        ParameterIn::Header,
        "1 to 128 visible ASCII characters, generated when absent or unusable; answered in \
         X-Request-Id, carried into the events and every log line",
        ObjectBuilder::new().schema_type(Type::String),
    );
    for item in document.paths.paths.values_mut() {
        item.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(header.clone()));
    }
}

/// The Swagger UI at `/docs/`, over both services' documents as the gateway routes them.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::new([COMMAND_DOCUMENT_PATH, QUERY_DOCUMENT_PATH]))
}
