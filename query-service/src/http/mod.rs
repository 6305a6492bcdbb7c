//! HTTP endpoints: reads only. Nothing here writes to the read models. Each handler carries
//! its OpenAPI description, and [`routes`] registers it and documents it in the same call, so
//! a route cannot be served without being in the document.

mod consistency;
mod customers;
mod error;
mod health;
mod orders;
mod paging;

pub use consistency::MaxConsistencyWait;
pub use error::ApiError;

use std::collections::BTreeMap;

use actix_web::web;
use service_support::auth::{Granted, Read, READ_ALL_SCOPE};
use service_support::docs::{
    self, BearerSecurity, ErrorBody, EVENTS_DOCUMENT_PATH, QUERY_DOCUMENT_PATH,
};
use utoipa::openapi::response::Response;
use utoipa::openapi::RefOr;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::store::Whose;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order queries",
        description = "The query side: orders and customer summaries, projected from the \
                       command side's events. Commands are served by the command side. Each \
                       caller sees its own orders and customers (those its token's subject \
                       placed; a customer is an email under one owner); a token that also \
                       holds `orders:read-all` lists and reads every owner's orders and \
                       customers.",
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerSecurity),
    tags((name = "orders", description = "Orders, each with its customer embedded"),
         (name = "customers", description = "Customers with the summary of their orders")),
)]
struct QueryApi;

/// The errors every read may answer, documented once for all of them.
pub struct ReadErrors;

impl utoipa::IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        docs::error_responses(&[
            (400, "Invalid parameter or consistency token"),
            (401, "No valid bearer token (auth enabled)"),
            (403, "The token lacks the orders:read scope"),
            (
                503,
                "MongoDB unavailable, not_yet_consistent or too_many_waiting; see Retry-After",
            ),
        ])
    }
}

/// Whose orders and customers a read by `granted` sees: every owner's with `orders:read-all`,
/// otherwise the caller's own.
fn whose(granted: &Granted<Read>) -> Whose<'_> {
    if granted.holds(READ_ALL_SCOPE) {
        Whose::Everyone
    } else {
        Whose::Owner(granted.principal().scope_name())
    }
}

/// Registers every route of the query service, and the docs page for both services.
pub fn routes(config: &mut ServiceConfig) {
    config
        .service(orders::list)
        .service(orders::get)
        .service(customers::list)
        .service(customers::get)
        .service(customers::orders)
        .route(QUERY_DOCUMENT_PATH, web::get().to(docs::serve_document))
        .route(
            EVENTS_DOCUMENT_PATH,
            web::get().to(docs::serve_events_document),
        )
        .map(|config| {
            // Served for operators and orchestrators, never routed by the gateway, so not in
            // the API's document (docs/operating.md describes the probes).
            config
                .service(service_support::health::live)
                .service(health::ready)
                .service(docs::swagger_ui())
        })
        .default_service(web::to(error::no_route));
}

/// The OpenAPI document of every route [`routes`] registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::document_of(QueryApi::openapi(), routes)
}

/// The query-string extractor settings: JSON error bodies.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(error::query_error)
}
