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
use serde::Deserialize;
use service_support::auth::{AuthError, Granted, Read, READ_ALL_SCOPE};
use service_support::chars::{self, CONTROL};
use service_support::docs::{
    self, BearerSecurity, ErrorBody, EVENTS_DOCUMENT_PATH, QUERY_DOCUMENT_PATH,
};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi};
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
            (
                403,
                "The token lacks the orders:read scope, or orders:read-all for another owner's",
            ),
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

/// The `owner` query parameter of the reads that take one: whose orders or customers.
#[derive(Debug, Default, Deserialize)]
pub struct OwnerParam {
    owner: Option<String>,
}

impl IntoParams for OwnerParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![docs::parameter(
            "owner",
            ParameterIn::Query,
            "Whose: an owner's subject (`\"\"` for the anonymous one). The caller's own by \
             default; another owner's needs orders:read-all",
            docs::string_schema(chars::pattern_without(&[CONTROL]), None),
        )]
    }
}

impl OwnerParam {
    /// The owner named, if any: the caller's own always, another only with `orders:read-all`.
    fn named<'a>(&'a self, granted: &Granted<Read>) -> Result<Option<&'a str>, ApiError> {
        let Some(owner) = self.owner.as_deref() else {
            return Ok(None);
        };
        if owner.chars().any(|c| chars::contains(CONTROL, c)) {
            return Err(ApiError::InvalidParameter {
                name: "owner",
                message: "must not contain control characters".to_owned(),
            });
        }
        if owner != granted.principal().scope_name() && !granted.holds(READ_ALL_SCOPE) {
            return Err(AuthError::InsufficientScope {
                required: READ_ALL_SCOPE,
            }
            .into());
        }
        Ok(Some(owner))
    }

    /// `owner` as the next page's link repeats it.
    fn link_params(&self) -> Vec<(&'static str, &str)> {
        self.owner
            .iter()
            .map(|owner| ("owner", owner.as_str()))
            .collect()
    }

    /// Whose a listing shows: the named owner's, or as [`whose`].
    fn listing<'a>(&'a self, granted: &'a Granted<Read>) -> Result<Whose<'a>, ApiError> {
        Ok(self
            .named(granted)?
            .map_or_else(|| whose(granted), Whose::Owner))
    }

    /// Whose customer an email names: the named owner's, or the caller's.
    fn of_customer<'a>(&'a self, granted: &'a Granted<Read>) -> Result<&'a str, ApiError> {
        Ok(self
            .named(granted)?
            .unwrap_or_else(|| granted.principal().scope_name()))
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
