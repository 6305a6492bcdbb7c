//! The API contract: Schemathesis, pinned (`install_validators` in deploy/scripts/infra.sh),
//! sends what each service's OpenAPI document allows and what it forbids, through the real
//! gateway to both services with auth on, and checks every answer against the document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic
use std::time::Duration;

use harness::{schemathesis, ServiceStack};
use serde_json::Value;
use service_support::auth::{TokenIssuer, READ_SCOPE, WRITE_SCOPE};
use service_support::docs::{COMMAND_DOCUMENT_PATH, QUERY_DOCUMENT_PATH};

const SECRET: &str = "contract-test-secret-at-least-32-bytes";
const AUDIENCE: &str = "orders-api";
/// Test cases per operation and phase: enough to reach every rule's edges (the coverage phase
/// sends them all), few enough for a couple of minutes.
const EXAMPLES: &str = "40";

async fn stack_with_auth() -> (ServiceStack, String) {
    let stack = ServiceStack::start_with(&[
        ("APP_AUTH__ENABLED", "true".to_owned()),
        ("APP_AUTH__HS256_SECRET", SECRET.to_owned()),
        ("APP_AUTH__AUDIENCE", AUDIENCE.to_owned()),
    ])
    .await;
    let token = TokenIssuer::hs256(SECRET, AUDIENCE)
        .issue(
            "contract-test",
            &[READ_SCOPE, WRITE_SCOPE],
            Duration::from_secs(3600),
        )
        .expect("issue a token");
    (stack, format!("Authorization: Bearer {token}"))
}

#[tokio::test]
async fn each_document_says_what_its_service_does_through_the_gateway() {
    let (stack, authorization) = stack_with_auth().await;
    for document in [COMMAND_DOCUMENT_PATH, QUERY_DOCUMENT_PATH] {
        let location = stack.gateway.url(document);
        let report = schemathesis(&location, &["-H", &authorization, "-n", EXAMPLES])
            .unwrap_or_else(|report| panic!("{document}:\n{report}"));
        assert!(
            report.contains(" passed") && !report.contains('❌'),
            "{document}:\n{report}"
        );
        if document == COMMAND_DOCUMENT_PATH {
            // The stateful phase followed the link from a placed order to its cancellation.
            assert!(
                report.contains("Stateful") && !report.contains("Stateful (not applicable)"),
                "{report}"
            );
        }
    }
}

/// The command document as served, with the description's length rule changed to `max_chars`
/// while the service keeps its own: what a rule changed in code only would serve.
async fn drifted_document(stack: &ServiceStack, authorization: &str, max_chars: u64) -> Value {
    let (name, value) = authorization.split_once(": ").unwrap();
    let mut document: Value = reqwest::Client::new()
        .get(stack.gateway.url(COMMAND_DOCUMENT_PATH))
        .header(name, value)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rule = &mut document["components"]["schemas"]["PlaceOrderBody"]["allOf"][0]["properties"]
        ["description"]["maxLength"];
    assert_eq!(rule, 500, "the served rule moved: update this test");
    *rule = max_chars.into();
    document
}

#[tokio::test]
async fn a_rule_that_drifts_from_the_code_is_found() {
    let (stack, authorization) = stack_with_auth().await;
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    // Looser than the code: descriptions of 501 to 600 characters are valid by the document
    // and refused by the service. Stricter: 401 to 500 are invalid and accepted.
    for (max_chars, finding) in [
        (600, "Schema-valid request rejected"),
        (400, "Schema-violating request accepted"),
    ] {
        let file = dir.join(format!("command-{max_chars}.json"));
        let document = drifted_document(&stack, &authorization, max_chars).await;
        std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
        let report = schemathesis(
            file.to_str().unwrap(),
            &[
                "--url",
                &stack.gateway.url(""),
                "-H",
                &authorization,
                "-n",
                EXAMPLES,
                "--include-operation-id",
                "place_order",
                "--phases",
                "coverage",
            ],
        )
        .expect_err("a drifted rule went unnoticed");
        assert!(report.contains(finding), "maxLength {max_chars}:\n{report}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
