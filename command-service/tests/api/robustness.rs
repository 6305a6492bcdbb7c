//! Client mistakes at the HTTP level: each gets a 4xx with a JSON body, never a 500.

use serde_json::Value;

use crate::helpers::{json_error, spawn_app};

#[tokio::test]
async fn malformed_truncated_or_non_object_json_is_a_400() {
    let app = spawn_app().await;
    for raw in [
        &b"{\"description\": \"Tea\", \"quantity\": 3"[..],
        b"not json at all",
        b"[1, 2, 3]",
        br#"["Tea", 2, "Ada", "Lovelace", "arr@example.com", null, null]"#,
        b"\"a string\"",
        b"{\"description\": \"\xff\xfe\"}",
        b"",
    ] {
        let response = app
            .client
            .post(format!("{}/orders", app.address))
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        let body = json_error(response, 400).await;
        assert_eq!(
            body["error"],
            "malformed_json",
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert!(
            !body.to_string().contains("PlaceOrderBody"),
            "an internal type named: {body}"
        );
    }
}

#[tokio::test]
async fn a_key_given_twice_is_a_400_naming_it_and_places_nothing() {
    let app = spawn_app().await;
    for (path, raw) in [
        (
            "/orders".to_owned(),
            r#"{"description": "Tea", "quantity": 1, "firstName": "Ada", "lastName": "Lovelace",
                "email": "twice@example.com", "quantity": 9999}"#,
        ),
        (
            format!(
                "/orders/{}/cancel",
                app.place_order("ada@example.com").await
            ),
            r#"{"reason": "a", "reason": "b"}"#,
        ),
    ] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let body = json_error(response, 400).await;
        assert_eq!(body["error"], "malformed_json", "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("duplicate key"), "{message}");
    }
}

#[tokio::test]
async fn json_declared_in_a_charset_other_than_utf8_is_a_415() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&crate::helpers::order_body("ada@example.com")).unwrap();
    let post = |content_type: &'static str| {
        app.client
            .post(format!("{}/orders", app.address))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
    };
    for refused in [
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
    ] {
        let error = json_error(post(refused).await.unwrap(), 415).await;
        assert_eq!(error["error"], "unsupported_media_type", "{refused}");
    }
    for accepted in ["application/json", "application/json; charset=UTF-8"] {
        assert_eq!(post(accepted).await.unwrap().status(), 202, "{accepted}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header("content-type", "text/plain")
        .body("description=Tea")
        .send()
        .await
        .unwrap();
    let body = json_error(response, 415).await;
    assert_eq!(body["error"], "unsupported_media_type");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_app().await;
    let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(100_000));
    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let body = json_error(response, 413).await;
    assert_eq!(body["error"], "payload_too_large");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(response, 404).await["error"], "not_found");

    let response = app
        .client
        .delete(format!("{}/orders", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_error(response, 405).await["error"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = spawn_app().await;
    let url = format!("{}/health/ready", app.address);
    let body: Value = harness::eventually(
        "the relay to connect",
        std::time::Duration::from_secs(10),
        || {
            let request = app.client.get(&url).send();
            async move {
                let body: Value = request.await.ok()?.json().await.ok()?;
                (body["checks"]["rabbitmq"] == "up").then_some(body)
            }
        },
    )
    .await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["postgres"], "up");

    let live = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}
