use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::store::ReadStore;
use service_support::broker::BrokerStatus;

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process is alive")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// Ready while MongoDB answers: reads can be served even when the broker is away (they are
/// only staler). The consumer's state is reported for operators all the same.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses(
    (status = 200, description = "MongoDB answers; `checks` gives each dependency"),
    (status = 503, description = "MongoDB does not answer"),
))]
#[get("/health/ready")]
pub async fn ready(store: web::Data<ReadStore>, broker: web::Data<BrokerStatus>) -> HttpResponse {
    let mongodb_up = store.ping().await.is_ok();
    let up_or_down = |up: bool| if up { "up" } else { "down" };
    let body = json!({
        "status": if mongodb_up { "ready" } else { "not_ready" },
        "checks": {
            "mongodb": up_or_down(mongodb_up),
            "rabbitmq": up_or_down(broker.is_connected()),
        }
    });
    if mongodb_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
