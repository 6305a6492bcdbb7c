use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::broker::BrokerStatus;
use crate::store::Store;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// Ready while PostgreSQL answers: orders can be accepted even with the broker down, because
/// the outbox keeps them. The broker's state is reported for operators all the same.
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
