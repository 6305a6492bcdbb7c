use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use harness::eventually;
use query_service::read_models::customers::{customer_key, Spans};

use crate::helpers::{span_length_of_this_run, spawn_app, spawn_app_with};

fn token_of(event: &shared_events::EventEnvelope) -> String {
    format!("{}.{}", event.aggregate_id, event.aggregate_version)
}

#[tokio::test]
async fn a_read_with_a_token_waits_until_the_event_is_applied() {
    let app = spawn_app().await;
    let placed = app.placed("ada@example.com", 3, Utc::now());
    // The read starts before the event is even published, so without waiting it would 404.
    let read = app
        .client
        .get(format!("{}/orders/{}", app.address, placed.aggregate_id))
        .header("X-Consistency-Token", token_of(&placed))
        .send();
    let publish = app.publish(&placed);
    let (response, ()) = tokio::join!(read, publish);
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["version"], 1);
}

#[tokio::test]
async fn a_token_in_the_query_string_covers_the_customer_summary_too() {
    let app = spawn_app().await;
    let placed = app.placed("ada@example.com", 3, Utc::now());
    app.publish(&placed).await;
    let cancelled = app.cancelled(&placed);
    app.publish(&cancelled).await;

    let response = app
        .get(&format!(
            "/customers/ada@example.com?consistencyToken={}",
            token_of(&cancelled)
        ))
        .await;
    assert_eq!(response.status(), 200);
    let customer: Value = response.json().await.unwrap();
    assert_eq!(customer["cancelledOrderCount"], 1, "{customer}");
    assert_eq!(customer["orderCount"], 0, "{customer}");
}

#[tokio::test]
async fn a_token_counts_its_order_in_the_customer_s_reads_while_earlier_orders_are_not_applied() {
    let app = spawn_app().await;
    let email = "ada@example.com";
    let spans = Spans::of(&customer_key("", email), span_length_of_this_run());
    // The orders that close the customer's first two spans, each storing a summary document.
    let (first_span, first) = (
        spans.last_order_of(0) as usize,
        spans.last_order_of(1) as usize,
    );
    let orders: Vec<_> = (0..first + 2)
        .map(|_| app.placed(email, 1, Utc::now()))
        .collect();
    // The second span, and the order after it, are not applied yet: a read without a token
    // stops after the first span.
    for order in orders[..first_span].iter().chain(&orders[first + 1..]) {
        app.publish(order).await;
    }
    app.wait_until_processed().await;
    let token = token_of(&orders[first + 1]);

    let without = app.get_eventually(&format!("/customers/{email}")).await;
    assert_eq!(without["orderCount"], first_span, "{without}");
    for path in [
        format!("/customers/{email}?consistencyToken={token}"),
        format!("/customers?consistencyToken={token}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        let customer = body.as_array().map_or(&body, |listed| &listed[0]);
        assert_eq!(customer["orderCount"], first + 2, "{path}: {body}");
    }
    let response = app
        .get(&format!(
            "/orders?email={email}&limit=1&consistencyToken={token}"
        ))
        .await;
    let newest: Value = response.json().await.unwrap();
    assert_eq!(
        newest[0]["id"],
        orders[first + 1].aggregate_id.to_string(),
        "{newest}"
    );
}

#[tokio::test]
async fn a_token_the_read_model_never_reaches_is_answered_503_after_the_bounded_wait() {
    const WAIT_MS: u64 = 500;
    let app = spawn_app_with(|settings| settings.consistency.max_wait_ms = WAIT_MS).await;
    let never_published = app.placed("ada@example.com", 3, Utc::now());
    let started = Instant::now();
    let response = app
        .client
        .get(format!("{}/orders", app.address))
        .header("X-Consistency-Token", token_of(&never_published))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_yet_consistent");
    assert_eq!(body["consistencyToken"], token_of(&never_published));
    assert!(
        waited.as_millis() >= u128::from(WAIT_MS),
        "answered after {waited:?}, before the configured wait"
    );
}

#[tokio::test]
async fn a_token_no_command_issued_lately_is_answered_503_without_waiting() {
    let app = spawn_app_with(|settings| settings.consistency.max_wait_ms = 10_000).await;
    let published = app.placed("ada@example.com", 3, Utc::now());
    app.publish(&published).await;
    app.wait_until_processed().await;
    let made_up = [
        // Any uuid: not a UUIDv7 of a recent order.
        format!("{}.1", uuid::Uuid::new_v4()),
        // A known order at a version no command could have issued.
        format!("{}.9999999999999999999", published.aggregate_id),
    ];
    for token in made_up {
        let started = Instant::now();
        let response = app
            .client
            .get(format!("{}/orders", app.address))
            .header("X-Consistency-Token", &token)
            .send()
            .await
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(response.status(), 503, "{token}");
        // Polling would last the whole configured 10 s.
        assert!(waited < Duration::from_secs(5), "{token}: {waited:?}");
    }
}

#[tokio::test]
async fn a_malformed_token_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    for path in [
        "/orders?consistencyToken=not-a-token",
        "/customers?consistencyToken=01935f3a-1c00-7000-8000-000000000001.0",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["parameter"], "consistencyToken", "{path}");
    }
}

#[tokio::test]
async fn a_malformed_token_in_the_header_is_a_400_naming_the_header() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/orders", app.address))
        .header("x-consistency-token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_header", "{body}");
    assert_eq!(body["header"], "X-Consistency-Token", "{body}");
    assert!(body.get("parameter").is_none(), "{body}");
}

#[tokio::test]
async fn reads_past_the_bound_on_waiting_ones_are_answered_503_at_once() {
    let app = spawn_app_with(|settings| {
        settings.consistency.max_wait_ms = 10_000;
        settings.consistency.max_waiting_reads = 2;
    })
    .await;
    let wait_for = |event: &shared_events::EventEnvelope| {
        app.client
            .get(format!("{}/orders/{}", app.address, event.aggregate_id))
            .header("X-Consistency-Token", token_of(event))
            .send()
    };
    let first = app.placed("ada@example.com", 1, Utc::now());
    let second = app.placed("bob@example.com", 1, Utc::now());
    let waiting = tokio::spawn(futures::future::join(wait_for(&first), wait_for(&second)));
    eventually("both reads to wait", Duration::from_secs(10), || async {
        let page = harness::scrape_metrics(&app.client, &app.metrics_address).await;
        (harness::metric(&page, "consistency_waiting_reads") == Some(2.0)).then_some(())
    })
    .await;

    let started = Instant::now();
    let refused = wait_for(&app.placed("cy@example.com", 1, Utc::now()))
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_waiting", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "it waited");

    // The waiting reads are woken by the batch that applies their orders.
    app.publish(&first).await;
    app.publish(&second).await;
    let (first_read, second_read) = waiting.await.unwrap();
    assert_eq!(first_read.unwrap().status(), 200);
    assert_eq!(second_read.unwrap().status(), 200);
}
