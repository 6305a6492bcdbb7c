use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN};

async fn get_events(app: &TestApp, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/admin/events{query}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_event_log_is_paged_in_position_order_with_its_end() {
    let app = spawn_app().await;
    let first = app.place_order("ada@example.com").await;
    let second = app.place_order("grace@example.com").await;
    let third = app.place_order("ada@example.com").await;

    let response = get_events(&app, "?limit=2", Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["envelope"]["aggregateId"], first.as_str());
    assert_eq!(events[1]["envelope"]["aggregateId"], second.as_str());
    let last_position = page["lastPosition"].as_i64().unwrap();
    assert_eq!(last_position, events[1]["position"].as_i64().unwrap() + 1);

    let after = events[1]["position"].as_i64().unwrap();
    let rest: Value = get_events(&app, &format!("?after={after}"), Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let rest = rest["events"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["envelope"]["aggregateId"], third.as_str());
}

#[tokio::test]
async fn the_event_log_needs_the_admin_token() {
    let app = spawn_app().await;
    for token in [None, Some("wrong"), Some("test-admin-tokem")] {
        let response = get_events(&app, "", token).await;
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    let body: Value = get_events(&app, "?limit=0", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["parameter"], "limit");
}

#[tokio::test]
async fn without_a_configured_token_the_admin_api_is_off() {
    let first = spawn_app().await;
    let app = spawn_app_with(&first.database_url, &first.amqp_url, |settings| {
        settings.admin.token = SecretString::default();
    })
    .await;
    for token in [None, Some(""), Some(ADMIN_TOKEN)] {
        let response = get_events(&app, "", token).await;
        assert_eq!(response.status(), 403, "{token:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "admin_disabled");
    }
}
