//! HTTP endpoints: thin handlers that turn requests into commands and store calls.

mod admin;
mod error;
mod health;
mod orders;

pub use admin::AdminToken;
pub use error::ApiError;

use actix_web::web;

/// Registers every route of the command service.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/orders")
                .route(web::post().to(orders::place_order))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(
            web::resource("/orders/{id}/cancel")
                .route(web::post().to(orders::cancel_order))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(
            web::resource("/admin/events")
                .route(web::get().to(admin::events))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(web::resource("/health/live").route(web::get().to(health::live)))
        .service(web::resource("/health/ready").route(web::get().to(health::ready)))
        .default_service(web::to(error::not_found));
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
