use diesel::prelude::*;
use diesel::sql_types::{Int8, Jsonb, Nullable, Text};
use serde_json::{json, Value};
use shared_events::{EventEnvelope, OrderEvent};

use crate::helpers::{order_body, spawn_app, TestApp};

#[derive(QueryableByName, Debug)]
struct OrderState {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Int8)]
    version: i64,
    #[diesel(sql_type = Nullable<Text>)]
    cancellation_reason: Option<String>,
}

#[derive(QueryableByName, Debug)]
struct Envelope {
    #[diesel(sql_type = Jsonb)]
    envelope: Value,
}

fn order_state(app: &TestApp, id: &str) -> OrderState {
    diesel::sql_query("SELECT status, version, cancellation_reason FROM orders WHERE id = $1::uuid")
        .bind::<Text, _>(id)
        .get_result(&mut app.database())
        .unwrap()
}

fn events_of(app: &TestApp, id: &str) -> Vec<EventEnvelope> {
    let rows: Vec<Envelope> =
        diesel::sql_query("SELECT envelope FROM outbox WHERE aggregate_id = $1::uuid ORDER BY id")
            .bind::<Text, _>(id)
            .load(&mut app.database())
            .unwrap();
    rows.into_iter()
        .map(|row| EventEnvelope::decode(row.envelope.to_string().as_bytes()).unwrap())
        .collect()
}

async fn cancel(app: &TestApp, id: &str, if_match: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/orders/{id}/cancel", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

async fn error_code(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn placing_an_order_answers_its_version_and_consistency_token() {
    let app = spawn_app().await;
    let response = app.post_order(&order_body("ada@example.com")).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let header_token = response.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["version"], 1);
    assert_eq!(body["consistencyToken"], header_token);
    assert_eq!(header_token, format!("{}.1", body["id"].as_str().unwrap()));
}

#[tokio::test]
async fn cancelling_commits_the_new_state_with_an_event_carrying_the_whole_order() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;

    let response = cancel(&app, &id, Some("\"1\""), r#"{"reason": "Ordered twice"}"#).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["etag"], "\"2\"");
    assert_eq!(response.headers()["location"], format!("/orders/{id}"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["version"], 2);
    assert_eq!(body["consistencyToken"], format!("{id}.2"));

    let state = order_state(&app, &id);
    assert_eq!((state.status.as_str(), state.version), ("cancelled", 2));
    assert_eq!(state.cancellation_reason.as_deref(), Some("Ordered twice"));
    let events = events_of(&app, &id);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].aggregate_version, 2);
    let OrderEvent::OrderCancelled(cancelled) = &events[1].payload else {
        panic!("not an OrderCancelled: {:?}", events[1]);
    };
    assert_eq!(cancelled.reason.as_deref(), Some("Ordered twice"));
    assert_eq!(&cancelled.order, events[0].payload.order());
}

#[tokio::test]
async fn the_body_is_optional() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    let response = app
        .client
        .post(format!("{}/orders/{id}/cancel", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(order_state(&app, &id).cancellation_reason, None);
}

#[tokio::test]
async fn a_body_not_sent_as_json_is_a_415_and_cancels_nothing() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    for content_type in [Some("text/plain"), None] {
        let mut request = app
            .client
            .post(format!("{}/orders/{id}/cancel", app.address))
            .body(r#"{"reason": "changed my mind"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            error_code(response, 415).await["error"],
            "unsupported_media_type",
            "{content_type:?}"
        );
    }
    let state = order_state(&app, &id);
    assert_eq!((state.status.as_str(), state.version), ("placed", 1));
}

#[tokio::test]
async fn cancelling_twice_is_a_409_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    assert_eq!(cancel(&app, &id, None, "").await.status(), 202);

    let body = error_code(cancel(&app, &id, None, "").await, 409).await;
    assert_eq!(body["error"], "order_already_cancelled");
    assert_eq!(events_of(&app, &id).len(), 2);
    assert_eq!(order_state(&app, &id).version, 2);
}

#[tokio::test]
async fn an_unknown_order_is_a_404() {
    let app = spawn_app().await;
    for id in ["01935f3a-1c00-7000-8000-00000000dead", "not-a-uuid"] {
        let body = error_code(cancel(&app, id, None, "").await, 404).await;
        assert_eq!(body["error"], "not_found", "{id}");
    }
}

#[tokio::test]
async fn a_stale_if_match_is_a_412_naming_the_current_version() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;

    let response = cancel(&app, &id, Some("\"7\""), "").await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body = error_code(response, 412).await;
    assert_eq!(body["error"], "version_mismatch");
    assert_eq!(body["currentVersion"], 1);
    assert_eq!(order_state(&app, &id).status, "placed");
    assert_eq!(events_of(&app, &id).len(), 1);

    for tag in ["W/\"1\"", "*"] {
        let id = app.place_order("ada@example.com").await;
        assert_eq!(
            cancel(&app, &id, Some(tag), "").await.status(),
            202,
            "{tag}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_json_4xx_naming_what_is_wrong() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;

    let body = error_code(cancel(&app, &id, Some("version one"), "").await, 400).await;
    assert_eq!(body["header"], "If-Match");
    let body = error_code(cancel(&app, &id, None, "{not json").await, 400).await;
    assert_eq!(body["error"], "malformed_json");
    let too_long = json!({ "reason": "x".repeat(501) }).to_string();
    let body = error_code(cancel(&app, &id, None, &too_long).await, 422).await;
    assert_eq!(body["fields"][0]["field"], "reason");
    let body = error_code(cancel(&app, &id, None, r#"{"reason": 5}"#).await, 422).await;
    assert_eq!(body["fields"][0]["field"], "reason");
    let huge = json!({ "reason": "x".repeat(20_000) }).to_string();
    error_code(cancel(&app, &id, None, &huge).await, 413).await;
    assert_eq!(
        order_state(&app, &id).status,
        "placed",
        "nothing was cancelled"
    );
}

#[tokio::test]
async fn of_racing_cancellations_exactly_one_succeeds() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    let statuses: Vec<u16> =
        futures::future::join_all((0..8).map(|_| cancel(&app, &id, Some("\"1\""), "")))
            .await
            .into_iter()
            .map(|response| response.status().as_u16())
            .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| [202, 409, 412].contains(status)),
        "{statuses:?}"
    );
    assert_eq!(events_of(&app, &id).len(), 2);
}

#[tokio::test]
async fn a_unit_price_is_stored_and_published_and_comes_with_its_currency() {
    let app = spawn_app().await;
    let mut body = order_body("ada@example.com");
    body["unitPriceMinor"] = json!(1250);
    body["currency"] = json!("eur");
    let response = app.post_order(&body).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let price = events_of(&app, &id)[0].payload.order().unit_price.clone();
    let price = price.expect("the event carries the price");
    assert_eq!((price.amount_minor, price.currency.as_str()), (1250, "EUR"));

    for (missing, present, value) in [
        ("currency", "unitPriceMinor", json!(100)),
        ("unitPriceMinor", "currency", json!("EUR")),
    ] {
        let mut body = order_body("ada@example.com");
        body[present] = value;
        let error = error_code(app.post_order(&body).await, 422).await;
        assert_eq!(error["fields"][0]["field"], missing, "{error}");
    }
    let mut body = order_body("ada@example.com");
    body["unitPriceMinor"] = json!(-5);
    body["currency"] = json!("EURO");
    let error = error_code(app.post_order(&body).await, 422).await;
    let fields: Vec<&str> = error["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["unitPriceMinor", "currency"]);
}
