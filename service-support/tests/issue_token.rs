#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::process::Command;

use actix_web::http::header;
use actix_web::test::TestRequest;
use service_support::auth::{AuthError, AuthSettings, Authenticator, Principal, TokenAlgorithm};

const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes";

fn authenticator() -> Authenticator {
    Authenticator::from_settings(&AuthSettings {
        enabled: true,
        algorithm: TokenAlgorithm::HS256,
        hs256_secret: SECRET.into(),
        rs256_public_key: String::new(),
        audience: "orders-api".to_owned(),
        issuer: String::new(),
    })
    .unwrap()
}

fn issue(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_issue-token"))
        .args(args)
        .env("APP_AUTH__HS256_SECRET", SECRET)
        .env_remove("APP_AUTH__AUDIENCE")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn authorize(token: &str, scope: &'static str) -> Result<Principal, AuthError> {
    let request = TestRequest::default()
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .to_http_request();
    authenticator().authorize(&request, scope)
}

#[test]
fn an_issued_token_grants_exactly_the_scopes_asked_for() {
    let token = issue(&["--scope", "orders:read", "--subject", "reporting"]);

    assert_eq!(
        authorize(&token, "orders:read").unwrap(),
        Principal::Subject("reporting".to_owned())
    );
    assert!(matches!(
        authorize(&token, "orders:write"),
        Err(AuthError::InsufficientScope { .. })
    ));
}

#[test]
fn without_scopes_the_token_grants_both() {
    let token = issue(&[]);

    assert!(authorize(&token, "orders:read").is_ok());
    assert!(authorize(&token, "orders:write").is_ok());
}

#[test]
fn a_bad_argument_is_refused_with_the_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_issue-token"))
        .arg("--ttl-secs")
        .arg("soon")
        .env("APP_AUTH__HS256_SECRET", SECRET)
        .output()
        .unwrap();

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: issue-token"));
}
