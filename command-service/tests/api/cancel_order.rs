use diesel::prelude::*;
use diesel::sql_types::{Int8, Nullable, Text};
use serde_json::{json, Value};
use shared_events::OrderEvent;

use crate::helpers::{json_error, spawn_app, TestApp};

#[derive(QueryableByName, Debug)]
struct OrderState {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Int8)]
    version: i64,
    #[diesel(sql_type = Nullable<Text>)]
    cancellation_reason: Option<String>,
}

fn order_state(app: &TestApp, id: &str) -> OrderState {
    diesel::sql_query("SELECT status, version, cancellation_reason FROM orders WHERE id = $1::uuid")
        .bind::<Text, _>(id)
        .get_result(&mut app.database())
        .unwrap()
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
    let events = app.events_of(&id);
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
    let response = cancel(&app, &id, None, "").await;
    assert_eq!(response.status(), 202);
    assert_eq!(order_state(&app, &id).cancellation_reason, None);
}

#[tokio::test]
async fn a_request_not_sent_as_json_is_a_415_and_cancels_nothing() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    // What a form on another site can send without a CORS preflight, with a body and without.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for body in [r#"{"reason": "changed my mind"}"#, ""] {
            let mut request = app
                .client
                .post(format!("{}/orders/{id}/cancel", app.address))
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                json_error(response, 415).await["error"],
                "unsupported_media_type",
                "{content_type:?} {body:?}"
            );
        }
    }
    let state = order_state(&app, &id);
    assert_eq!((state.status.as_str(), state.version), ("placed", 1));
}

#[tokio::test]
async fn cancelling_twice_is_a_409_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    assert_eq!(cancel(&app, &id, None, "").await.status(), 202);

    let body = json_error(cancel(&app, &id, None, "").await, 409).await;
    assert_eq!(body["error"], "order_already_cancelled");
    assert_eq!(app.events_of(&id).len(), 2);
    assert_eq!(order_state(&app, &id).version, 2);
}

#[tokio::test]
async fn an_unknown_order_is_a_404_and_a_malformed_id_a_400_naming_it() {
    let app = spawn_app().await;
    let body = json_error(
        cancel(&app, "01935f3a-1c00-7000-8000-00000000dead", None, "").await,
        404,
    )
    .await;
    assert_eq!(body["error"], "not_found");
    for id in ["not-a-uuid", "%00"] {
        let body = json_error(cancel(&app, id, None, "").await, 400).await;
        assert_eq!(body["parameter"], "id", "{id}");
    }
}

#[tokio::test]
async fn a_stale_if_match_is_a_412_naming_the_current_version() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;

    let response = cancel(&app, &id, Some("\"7\""), "").await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body = json_error(response, 412).await;
    assert_eq!(body["error"], "version_mismatch");
    assert_eq!(body["currentVersion"], 1);
    assert_eq!(order_state(&app, &id).status, "placed");
    assert_eq!(app.events_of(&id).len(), 1);

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

    let body = json_error(cancel(&app, &id, Some("version one"), "").await, 400).await;
    assert_eq!(body["header"], "If-Match");
    let body = json_error(cancel(&app, &id, None, "{not json").await, 400).await;
    assert_eq!(body["error"], "malformed_json");
    let too_long = json!({ "reason": "x".repeat(501) }).to_string();
    let body = json_error(cancel(&app, &id, None, &too_long).await, 422).await;
    assert_eq!(body["fields"][0]["field"], "reason");
    let body = json_error(cancel(&app, &id, None, r#"{"reason": 5}"#).await, 422).await;
    assert_eq!(body["fields"][0]["field"], "reason");
    let huge = json!({ "reason": "x".repeat(20_000) }).to_string();
    json_error(cancel(&app, &id, None, &huge).await, 413).await;
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
    assert_eq!(app.events_of(&id).len(), 2);
}
