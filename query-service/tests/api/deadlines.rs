//! A read database that stops answering on open connections: reads and the projection give up
//! at their deadlines instead of waiting forever.

use std::time::Duration;

use chrono::Utc;
use harness::PrivateReadStore;
use serde_json::Value;

use crate::helpers::spawn_app_on;

#[tokio::test]
async fn a_frozen_read_database_fails_reads_with_503_and_the_projection_retries_until_it_answers() {
    let store = PrivateReadStore::start().await;
    let app = spawn_app_on(&store).await;
    let before = app.placed("frozen@example.com", 1, Utc::now());
    app.publish(&before).await;
    app.get_eventually(&format!("/orders/{}", before.aggregate_id))
        .await;

    store.pause();
    // The driver's own monitor would notice the frozen server only after its next heartbeat
    // (every 10 s) and a connect timeout: well after this client gives up.
    let response = app
        .client
        .get(format!("{}/orders/{}", app.address, before.aggregate_id))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("a read answered within 2 s while the read database is frozen");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");

    let during = app.placed("frozen@example.com", 2, Utc::now());
    app.publish(&during).await;
    app.wait_until_a_batch_is_retried().await;

    store.resume();
    let applied = app
        .get_eventually(&format!("/orders/{}", during.aggregate_id))
        .await;
    assert_eq!(applied["quantity"], 2);
    let customer = app.get_eventually("/customers/frozen@example.com").await;
    assert_eq!(customer["orderCount"], 2, "{customer}");
}
