use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::broker::BrokerStatus;
use crate::store::ReadStore;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// Ready while MongoDB answers: reads can be served even when the broker is away (they are
/// only staler). The consumer's state is reported for operators all the same.
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
