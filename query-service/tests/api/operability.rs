//! The OpenAPI document and docs page, the metrics port, request ids and bearer scopes.

use std::time::Duration;

use chrono::Utc;
use harness::{
    assert_document_describes_service, concrete_path, enable_test_auth, eventually, metric,
    openapi_operations, scrape_metrics, test_token_issuer,
};
use query_service::config::Settings;
use serde_json::Value;
use service_support::auth::{READ_SCOPE, WRITE_SCOPE};
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi/query.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_route_is_in_a_valid_openapi_document_and_every_documented_route_is_served() {
    let app = spawn_app().await;
    let document = document(&app).await;

    assert_document_describes_service(
        &app.client,
        &app.address,
        &document,
        "nobody@example.com",
        &[
            ("GET", "/customers"),
            ("GET", "/customers/{email}"),
            ("GET", "/customers/{email}/orders"),
            ("GET", "/orders"),
            ("GET", "/orders/{id}"),
        ],
    )
    .await;
}

#[tokio::test]
async fn every_read_says_how_to_wait_for_a_commands_token() {
    let app = spawn_app().await;
    let document = document(&app).await;

    for (_, path) in openapi_operations(&document) {
        let description = document["paths"][&path]["get"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.contains("X-Consistency-Token") && description.contains("waits"),
            "GET {path}: {description}"
        );
    }
}

#[tokio::test]
async fn the_docs_page_is_served_locally_over_both_documents() {
    let app = spawn_app().await;

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    let script = initializer.text().await.unwrap();
    assert!(script.contains("/openapi/command.json"), "{script}");
    assert!(script.contains("/openapi/query.json"), "{script}");
    assert_eq!(app.get("/docs/swagger-ui-bundle.js").await.status(), 200);
    let missing = app.get("/docs/no-such-file.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found",
        "a 404 without a JSON body"
    );
}

#[tokio::test]
async fn metrics_count_applied_duplicate_retried_and_dead_lettered_events() {
    let app = spawn_app().await;
    let placed = app.placed("metrics@example.com", 2, Utc::now());
    app.publish(&placed).await;
    app.publish(&placed).await;
    app.publisher
        .publish("order.garbage", b"not an envelope")
        .await;

    // The queue depths are sampled from RabbitMQ at each scrape and may trail the counters.
    let depth = |queue: &str| format!(r#"projection_queue_messages{{queue="{queue}"}}"#);
    let page = eventually("every delivery's fate", Duration::from_secs(10), || async {
        let page = scrape_metrics(&app.client, &app.metrics_address).await;
        (metric(&page, "events_dead_lettered_total") == Some(1.0)
            && metric(&page, "events_duplicate_total") == Some(1.0)
            && metric(&page, &depth("dead_letter")) == Some(1.0)
            // Compactions are timed after their batch's acknowledgement.
            && metric(&page, "projection_compaction_seconds_count") >= Some(1.0))
        .then_some(page)
    })
    .await;

    // Three attempts of the garbage (max_attempts = 3) and two copies of the order.
    assert_eq!(metric(&page, "events_consumed_total"), Some(5.0));
    assert_eq!(metric(&page, "events_applied_total"), Some(1.0));
    assert_eq!(
        metric(&page, r#"events_retried_total{reason="unusable"}"#),
        Some(2.0)
    );
    assert_eq!(metric(&page, "projection_lag_seconds_count"), Some(1.0));
    // Both copies of the order arrived; each batch was timed.
    assert_eq!(
        metric(&page, "projection_receive_delay_seconds_count"),
        Some(2.0)
    );
    assert!(metric(&page, "projection_apply_seconds_count") >= Some(1.0));
    assert_eq!(
        metric(&page, r#"dependency_up{dependency="mongodb"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(&page, r#"dependency_up{dependency="rabbitmq"}"#),
        Some(1.0)
    );
    // The parked garbage waits in the dead-letter queue; nothing waits elsewhere.
    assert_eq!(metric(&page, &depth("retry")), Some(0.0));
    assert_eq!(metric(&page, &depth("projection")), Some(0.0));
    app.get_eventually(&format!("/orders/{}", placed.aggregate_id))
        .await;
    let page = scrape_metrics(&app.client, &app.metrics_address).await;
    assert_eq!(
        metric(
            &page,
            r#"http_requests_total{method="GET",route="/orders/{id}",status="200"}"#
        ),
        Some(1.0)
    );
}

fn hs256(settings: &mut Settings) {
    enable_test_auth(&mut settings.auth);
}

fn token(scopes: &[&str]) -> String {
    test_token_issuer()
        .issue("reader", scopes, Duration::from_secs(3600))
        .unwrap()
}

#[tokio::test]
async fn reads_need_the_read_scope_when_auth_is_enabled() {
    let app = spawn_app_with(hs256).await;
    let read = |token: Option<String>| {
        let mut request = app.client.get(format!("{}/orders", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };

    let anonymous = read(None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap()["error"],
        "unauthorized"
    );
    let writer = read(Some(token(&[WRITE_SCOPE]))).await;
    assert_eq!(writer.status(), 403);
    assert_eq!(
        writer.json::<Value>().await.unwrap()["error"],
        "insufficient_scope"
    );
    assert_eq!(read(Some(token(&[READ_SCOPE]))).await.status(), 200);
}

#[tokio::test]
async fn every_documented_read_needs_the_read_scope_and_probes_need_none() {
    let app = spawn_app_with(hs256).await;
    let document = document(&app).await;

    for (method, template) in openapi_operations(&document) {
        let path = concrete_path(&template, &Uuid::now_v7().to_string());
        let status = app.get(&path).await.status();
        let scopes = &document["paths"][&template]["get"]["security"][0]["bearer"];
        assert_eq!(scopes[0], READ_SCOPE, "{method} {template}");
        assert_eq!(status, 401, "{method} {path} answered without a token");
    }
    for probe in ["/health/live", "/health/ready"] {
        assert!(
            document["paths"].get(probe).is_none(),
            "{probe} is documented"
        );
        assert_eq!(app.get(probe).await.status(), 200, "{probe}");
    }
}
