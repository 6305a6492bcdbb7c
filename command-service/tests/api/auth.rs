//! Bearer tokens with scopes, when `auth.enabled`.

use std::time::Duration;

use command_service::config::Settings;
use harness::{
    concrete_path, enable_test_auth, openapi_operations, random_secret, test_hs256_secret,
    test_token_issuer, TEST_AUDIENCE, TEST_ISSUER, TEST_RS256_PRIVATE_KEY, TEST_RS256_PUBLIC_KEY,
};
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use service_support::auth::{TokenAlgorithm, TokenIssuer, READ_SCOPE, WRITE_SCOPE};
use service_support::config::LayeredSettings;
use uuid::Uuid;

use crate::helpers::{order_body, spawn_app_owning, TestApp};

const HOUR: Duration = Duration::from_secs(3600);

fn hs256(settings: &mut Settings) {
    enable_test_auth(&mut settings.auth);
}

async fn spawn_with_auth(adjust: fn(&mut Settings)) -> TestApp {
    spawn_app_owning(adjust).await
}

async fn post_order_with(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/orders", app.address))
        .json(&order_body("auth@example.com"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn error_of(response: reqwest::Response, status: u16) -> (Value, String) {
    assert_eq!(response.status(), status);
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.json().await.unwrap(), challenge)
}

#[tokio::test]
async fn a_command_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_with_auth(hs256).await;

    let (body, challenge) = error_of(post_order_with(&app, None).await, 401).await;

    assert_eq!(body["error"], "unauthorized");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

#[tokio::test]
async fn a_token_with_the_write_scope_places_the_order() {
    let app = spawn_with_auth(hs256).await;
    let token = test_token_issuer()
        .issue("shop-frontend", &[READ_SCOPE, WRITE_SCOPE], HOUR)
        .unwrap();

    assert_eq!(post_order_with(&app, Some(&token)).await.status(), 202);
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_the_principal_that_used_it() {
    let app = spawn_with_auth(hs256).await;
    let issuer = test_token_issuer();
    let token_of = |subject: &str| issuer.issue(subject, &[WRITE_SCOPE], HOUR).unwrap();
    let post = |token: String| {
        app.client
            .post(format!("{}/orders", app.address))
            .bearer_auth(token)
            .header("idempotency-key", "checkout-1")
            .json(&order_body("shared@example.com"))
            .send()
    };

    let first = post(token_of("shop-a")).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let other = post(token_of("shop-b")).await.unwrap();
    assert_eq!(other.status(), 202);
    assert!(
        other.headers().get("idempotent-replayed").is_none(),
        "another principal's key was answered as a replay"
    );
    let other: Value = other.json().await.unwrap();
    assert_ne!(
        other["id"], first["id"],
        "another principal got the first order's id"
    );
    let retry = post(token_of("shop-a")).await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
}

#[tokio::test]
async fn an_order_belongs_to_its_token_s_subject_and_to_anybody_else_it_does_not_exist() {
    let app = spawn_with_auth(hs256).await;
    let issuer = test_token_issuer();
    let token_of = |subject: &str| issuer.issue(subject, &[WRITE_SCOPE], HOUR).unwrap();
    let placed = post_order_with(&app, Some(&token_of("shop-a"))).await;
    assert_eq!(placed.status(), 202);
    let id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = |token: String| {
        app.client
            .post(format!("{}/orders/{id}/cancel", app.address))
            .bearer_auth(token)
            .json(&serde_json::json!({}))
            .send()
    };

    let (body, _) = error_of(cancel(token_of("shop-b")).await.unwrap(), 404).await;
    assert_eq!(body["error"], "not_found");
    let unknown = app
        .client
        .post(format!("{}/orders/{}/cancel", app.address, Uuid::now_v7()))
        .bearer_auth(token_of("shop-b"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        body,
        "another's order answers as no order does"
    );

    assert_eq!(cancel(token_of("shop-a")).await.unwrap().status(), 202);
    let owners: Vec<String> = app
        .events_of(&id)
        .iter()
        .map(|event| event.payload.owner().to_owned())
        .collect();
    assert_eq!(owners, ["shop-a", "shop-a"]);
}

#[tokio::test]
async fn a_read_only_token_is_403_insufficient_scope() {
    let app = spawn_with_auth(hs256).await;
    let token = test_token_issuer()
        .issue("reporting", &[READ_SCOPE], HOUR)
        .unwrap();

    let (body, challenge) = error_of(post_order_with(&app, Some(&token)).await, 403).await;

    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], WRITE_SCOPE);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
}

#[tokio::test]
async fn expired_forged_and_foreign_tokens_are_401_invalid_token() {
    let app = spawn_with_auth(hs256).await;
    let issuer = test_token_issuer();
    let two_hours_ago = chrono::Utc::now().timestamp().unsigned_abs() - 7200;
    let expired = issuer
        .issue_at("late", &[WRITE_SCOPE], two_hours_ago, two_hours_ago + 3600)
        .unwrap();
    let forged = TokenIssuer::hs256(&random_secret(), TEST_AUDIENCE, TEST_ISSUER)
        .issue("forger", &[WRITE_SCOPE], HOUR)
        .unwrap();
    let other_audience = TokenIssuer::hs256(test_hs256_secret(), "another-api", TEST_ISSUER)
        .issue("elsewhere", &[WRITE_SCOPE], HOUR)
        .unwrap();
    let other_issuer = TokenIssuer::hs256(test_hs256_secret(), TEST_AUDIENCE, "https://elsewhere")
        .issue("elsewhere", &[WRITE_SCOPE], HOUR)
        .unwrap();

    for token in [
        expired.as_str(),
        forged.as_str(),
        other_audience.as_str(),
        other_issuer.as_str(),
        "not-a-jwt",
    ] {
        let (body, _) = error_of(post_order_with(&app, Some(token)).await, 401).await;
        assert_eq!(body["error"], "invalid_token", "{token}");
        assert_eq!(body["message"], "the bearer token is not valid", "{token}");
    }
}

#[tokio::test]
async fn rs256_tokens_are_checked_with_the_issuers_public_key() {
    let app = spawn_with_auth(|settings| {
        enable_test_auth(&mut settings.auth);
        settings.auth.algorithm = TokenAlgorithm::RS256;
        TEST_RS256_PUBLIC_KEY.clone_into(&mut settings.auth.rs256_public_key);
    })
    .await;
    let signed = TokenIssuer::rs256(TEST_RS256_PRIVATE_KEY, TEST_AUDIENCE, TEST_ISSUER)
        .unwrap()
        .issue("shop-frontend", &[WRITE_SCOPE], HOUR)
        .unwrap();
    // An HS256 token "signed" with the public key: the algorithm confusion attack.
    let confused = TokenIssuer::hs256(TEST_RS256_PUBLIC_KEY, TEST_AUDIENCE, TEST_ISSUER)
        .issue("attacker", &[WRITE_SCOPE], HOUR)
        .unwrap();

    assert_eq!(post_order_with(&app, Some(&signed)).await.status(), 202);
    assert_eq!(post_order_with(&app, Some(&confused)).await.status(), 401);
}

#[tokio::test]
async fn every_documented_command_needs_the_write_scope_and_probes_need_none() {
    let app = spawn_with_auth(hs256).await;
    let document: Value = app
        .client
        .get(format!("{}/openapi/command.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    for (method, template) in openapi_operations(&document) {
        let path = concrete_path(&template, &Uuid::now_v7().to_string());
        let status = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap()
            .status();
        let operation = &document["paths"][&template][method.to_lowercase()];
        assert_eq!(
            operation["security"][0]["bearer"],
            serde_json::json!([WRITE_SCOPE]),
            "{method} {template}"
        );
        assert_eq!(status, 401, "{method} {path} answered without a token");
    }
    // The probes are served to orchestrators without a token, outside the document.
    for probe in ["/health/live", "/health/ready"] {
        let response = app
            .client
            .get(format!("{}{probe}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
}

#[test]
fn a_short_hs256_secret_is_refused_at_start_up() {
    let mut settings = Settings::defaults().unwrap();
    hs256(&mut settings);
    settings.auth.hs256_secret = "too-short".into();

    let refused = service_support::auth::Authenticator::from_settings(&settings.auth);

    assert!(refused.is_err());
}
