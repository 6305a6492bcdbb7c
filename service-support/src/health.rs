//! The probes both services answer alike: live while the process serves, ready while its own
//! database answers. Neither waits for the broker: the command side keeps orders in its outbox
//! and the query side serves reads that are only staler while the broker is away, so the
//! broker's state is reported for operators and decides nothing.

use actix_web::{get, HttpResponse};
use serde_json::json;

use crate::broker::BrokerStatus;

/// Liveness: the process serves requests.
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// The readiness answer: 200 while the service's database (named `database` in `checks`)
/// answers, 503 otherwise, with the broker link's state beside it.
pub fn readiness(database: &str, database_up: bool, broker: &BrokerStatus) -> HttpResponse {
    let up_or_down = |up: bool| if up { "up" } else { "down" };
    let body = json!({
        "status": if database_up { "ready" } else { "not_ready" },
        "checks": {
            database: up_or_down(database_up),
            "rabbitmq": up_or_down(broker.is_connected()),
        }
    });
    if database_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
