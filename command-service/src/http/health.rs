use actix_web::{get, web, HttpResponse};
use service_support::broker::BrokerStatus;
use service_support::health::readiness;

use crate::store::Store;

/// Ready while PostgreSQL answers: orders can be accepted even with the broker down, because
/// the outbox keeps them. The broker's state is reported for operators all the same.
#[get("/health/ready")]
pub async fn ready(store: web::Data<Store>, broker: web::Data<BrokerStatus>) -> HttpResponse {
    readiness("postgres", store.ping().await.is_ok(), &broker)
}
