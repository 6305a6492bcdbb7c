//! HTTP endpoints: thin handlers that turn requests into commands and store calls. Each
//! handler carries its OpenAPI description, and [`routes`] registers it and documents it in
//! the same call, so a route cannot be served without being in the document.

mod admin;
mod error;
mod health;
mod json;
mod orders;
mod schemas;

pub use admin::AdminToken;
pub use error::ApiError;

use actix_web::{web, HttpMessage};
use service_support::docs::{self, BearerSecurity, ErrorBody, COMMAND_DOCUMENT_PATH};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order commands",
        description = "The command side: place and cancel orders. Reads are served by the \
                       query side.",
    ),
    components(schemas(ErrorBody, orders::CommandAccepted)),
    modifiers(&BearerSecurity),
    tags((name = "orders", description = "Commands on orders")),
)]
struct CommandApi;

/// Registers every route of the command service.
pub fn routes(config: &mut ServiceConfig) {
    config
        .service(orders::place_order)
        .service(orders::cancel_order)
        .map(operator_routes)
        .route(
            COMMAND_DOCUMENT_PATH,
            web::get().to(service_support::docs::serve_document),
        )
        .default_service(web::to(error::no_route));
}

/// The probes and the event log: served on the service's own port for operators and
/// orchestrators, never routed by the gateway, so not in the API's document
/// (docs/operating.md describes them).
fn operator_routes(config: &mut web::ServiceConfig) -> &mut web::ServiceConfig {
    config
        .service(admin::events)
        .service(service_support::health::live)
        .service(health::ready)
}

/// The OpenAPI document of every route [`routes`] registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::document_of(CommandApi::openapi(), routes)
}

/// The largest request body a command may have, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The JSON extractor settings: body size limit and JSON error bodies.
pub fn json_config(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(error::json_payload_error)
}

/// Refuses a body declared in a charset other than UTF-8, which the JSON extractor would read
/// as UTF-8 all the same (it checks the media type, not its charset).
pub fn require_utf8(request: &actix_web::HttpRequest) -> Result<(), ApiError> {
    let charset = request.mime_type().ok().flatten().and_then(|mime| {
        mime.get_param(actix_web::mime::CHARSET)
            .map(|charset| charset.as_str().to_owned())
    });
    match charset {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => {
            Err(ApiError::UnsupportedMediaType)
        }
        _ => Ok(()),
    }
}
