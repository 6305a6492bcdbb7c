//! HTTP endpoints: reads only. Nothing here writes to the read models.

mod consistency;
mod customers;
mod error;
mod health;
mod orders;
mod paging;

pub use consistency::MaxConsistencyWait;
pub use error::ApiError;

use actix_web::web;

/// Registers every route of the query service.
pub fn routes(config: &mut web::ServiceConfig) {
    let read = |path: &str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(web::to(error::method_not_allowed))
    };
    config
        .service(read("/orders", web::get().to(orders::list)))
        .service(read("/orders/{id}", web::get().to(orders::get)))
        .service(read("/customers", web::get().to(customers::list)))
        .service(read("/customers/{email}", web::get().to(customers::get)))
        .service(read(
            "/customers/{email}/orders",
            web::get().to(customers::orders),
        ))
        .service(read("/health/live", web::get().to(health::live)))
        .service(read("/health/ready", web::get().to(health::ready)))
        .default_service(web::to(error::not_found));
}

/// The query-string extractor settings: JSON error bodies.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(error::query_error)
}
