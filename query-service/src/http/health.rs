use actix_web::{get, web, HttpResponse};
use service_support::broker::BrokerStatus;
use service_support::health::readiness;

use crate::store::ReadStore;

/// Ready while MongoDB answers: reads can be served even when the broker is away (they are
/// only staler). The consumer's state is reported for operators all the same.
#[get("/health/ready")]
pub async fn ready(store: web::Data<ReadStore>, broker: web::Data<BrokerStatus>) -> HttpResponse {
    readiness("mongodb", store.ping().await.is_ok(), &broker)
}
