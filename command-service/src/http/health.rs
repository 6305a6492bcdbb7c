use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::store::Store;
use service_support::broker::BrokerStatus;

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process is alive")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// Ready while PostgreSQL answers: orders can be accepted even with the broker down, because
/// the outbox keeps them. The broker's state is reported for operators all the same.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses(
    (status = 200, description = "PostgreSQL answers; `checks` gives each dependency"),
    (status = 503, description = "PostgreSQL does not answer"),
))]
#[get("/health/ready")]
pub async fn ready(store: web::Data<Store>, broker: web::Data<BrokerStatus>) -> HttpResponse {
    let postgres_up = store.ping().await.is_ok();
    let up_or_down = |up: bool| if up { "up" } else { "down" };
    let body = json!({
        "status": if postgres_up { "ready" } else { "not_ready" },
        "checks": {
            "postgres": up_or_down(postgres_up),
            "rabbitmq": up_or_down(broker.is_connected()),
        }
    });
    if postgres_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
