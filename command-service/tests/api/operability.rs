//! The OpenAPI document, the metrics port and request ids.

use std::time::Duration;

use harness::{
    assert_document_describes_service, eventually, metric, openapi_problems, scrape_metrics,
    EventTap,
};
use serde_json::Value;
use shared_events::REQUEST_ID_HEADER;
use uuid::Uuid;

use crate::helpers::{order_body, spawn_app, TestApp};

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/openapi/command.json", app.address))
        .send()
        .await
        .unwrap();
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
        &Uuid::now_v7().to_string(),
        &[("POST", "/orders"), ("POST", "/orders/{id}/cancel")],
    )
    .await;
}

#[tokio::test]
async fn the_order_body_has_named_variants_and_the_answer_says_how_to_read_it_back() {
    let app = spawn_app().await;
    let document = document(&app).await;

    let schemas = &document["components"]["schemas"];
    let body = &schemas["PlaceOrderBody"];
    let variants: Vec<&str> = body["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("PlaceOrderBody is not a choice of variants: {body}"))
        .iter()
        .map(|variant| variant["$ref"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        variants,
        [
            "#/components/schemas/OrderWithoutPrice",
            "#/components/schemas/OrderWithPrice"
        ]
    );
    assert_eq!(
        schemas["OrderWithoutPrice"]["title"],
        "Order without a price"
    );
    assert_eq!(
        schemas["OrderWithPrice"]["title"],
        "Order with a unit price"
    );
    for path in ["/orders", "/orders/{id}/cancel"] {
        let description = document["paths"][path]["post"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.contains("consistencyToken"),
            "{path}: {description}"
        );
    }
}

#[tokio::test]
async fn the_operator_routes_are_served_but_not_in_the_api_document() {
    let app = spawn_app().await;
    let document = document(&app).await;

    for path in ["/health/live", "/health/ready", "/admin/events"] {
        assert!(
            document["paths"].get(path).is_none(),
            "{path} is documented"
        );
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 404, "{path} is not served");
    }
}

/// Without auth the document asks for no token: it says what the service enforces.
#[tokio::test]
async fn with_auth_off_the_document_has_no_security_requirement() {
    let app = spawn_app().await;
    let document = document(&app).await;

    assert!(
        !document.to_string().contains("\"security\""),
        "{document:#}"
    );
    assert!(document["components"].get("securitySchemes").is_none());
}

#[tokio::test]
async fn a_broken_document_is_refused_by_the_validator() {
    let app = spawn_app().await;
    let mut document = document(&app).await;
    document["paths"]["/orders"]["post"]["responses"] = Value::Null;

    assert!(openapi_problems(&document).is_err());
}

async fn metrics_page(app: &TestApp) -> String {
    scrape_metrics(&app.client, &app.metrics_address).await
}

#[tokio::test]
async fn metrics_count_requests_confirms_and_the_backlog_on_their_own_port() {
    let app = spawn_app().await;
    let _tap = EventTap::attach(&app.amqp_url).await;
    app.place_order("metrics@example.com").await;
    let invalid = app.post_order(&serde_json::json!({})).await;
    assert_eq!(invalid.status(), 422);

    // A scrape samples the backlog before it reads the counters, so the scrape that first
    // shows the confirm may show the backlog from just before it was marked.
    let page = eventually(
        "the event to be confirmed and the backlog sampled after it",
        Duration::from_secs(10),
        || async {
            let page = metrics_page(&app).await;
            (metric(&page, "outbox_publish_confirms_total") == Some(1.0)
                && metric(&page, "outbox_pending_events") == Some(0.0))
            .then_some(page)
        },
    )
    .await;

    let requests = |status: u16| {
        metric(
            &page,
            &format!(r#"http_requests_total{{method="POST",route="/orders",status="{status}"}}"#),
        )
    };
    assert_eq!(requests(202), Some(1.0));
    assert_eq!(requests(422), Some(1.0));
    assert_eq!(
        metric(
            &page,
            r#"http_request_duration_seconds_count{method="POST",route="/orders"}"#
        ),
        Some(2.0)
    );
    assert_eq!(metric(&page, "outbox_publish_failures_total"), Some(0.0));
    // The one event, timed from its commit to its confirm.
    assert_eq!(
        metric(&page, "outbox_publish_delay_seconds_count"),
        Some(1.0)
    );
    assert!(metric(&page, "outbox_publish_delay_seconds_sum") > Some(0.0));
    assert_eq!(metric(&page, "outbox_pending_events"), Some(0.0));
    assert_eq!(
        metric(&page, "outbox_oldest_pending_age_seconds"),
        Some(0.0)
    );
    assert_eq!(
        metric(&page, r#"dependency_up{dependency="postgres"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(&page, r#"dependency_up{dependency="rabbitmq"}"#),
        Some(1.0)
    );

    let on_api_port = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api_port.status(), 404, "metrics are not on the API port");
}

#[tokio::test]
async fn an_unpublishable_event_shows_as_backlog_and_failures() {
    // No queue is bound in this vhost, so the broker returns every event.
    let app = spawn_app().await;
    app.place_order("backlog@example.com").await;

    let page = eventually("a failed publish", Duration::from_secs(10), || async {
        let page = metrics_page(&app).await;
        (metric(&page, "outbox_publish_failures_total") >= Some(1.0)).then_some(page)
    })
    .await;

    assert_eq!(metric(&page, "outbox_pending_events"), Some(1.0));
    assert!(metric(&page, "outbox_oldest_pending_age_seconds") > Some(0.0));
    assert_eq!(metric(&page, "outbox_publish_confirms_total"), Some(0.0));
}

#[tokio::test]
async fn the_request_id_is_answered_and_carried_into_the_event_and_its_amqp_headers() {
    let app = spawn_app().await;
    let mut tap = EventTap::attach(&app.amqp_url).await;
    let request_id = format!("req-{}", Uuid::new_v4());

    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header(REQUEST_ID_HEADER, &request_id)
        .json(&order_body("correlated@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()[REQUEST_ID_HEADER], request_id.as_str());

    let (body, properties) = tap.next(Duration::from_secs(10)).await.expect("the event");
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["correlationId"], request_id.as_str());
    assert_eq!(
        properties.correlation_id().as_ref().map(|id| id.as_str()),
        Some(request_id.as_str())
    );
    let header = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(REQUEST_ID_HEADER).cloned());
    assert_eq!(
        header.and_then(|value| value.as_long_string().map(|text| text.to_string())),
        Some(request_id)
    );
}

#[tokio::test]
async fn a_request_without_a_usable_id_gets_a_new_one_that_the_event_carries() {
    let app = spawn_app().await;
    let mut tap = EventTap::attach(&app.amqp_url).await;

    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header(REQUEST_ID_HEADER, "has spaces")
        .json(&order_body("generated@example.com"))
        .send()
        .await
        .unwrap();
    let generated = response.headers()[REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(Uuid::parse_str(&generated).is_ok(), "{generated}");

    let (body, _) = tap.next(Duration::from_secs(10)).await.expect("the event");
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["correlationId"], generated.as_str());
}
