//! The API contract: Schemathesis, pinned (`install_validators` in deploy/scripts/infra.sh),
//! sends what each service's OpenAPI document allows and what it forbids, through the real
//! gateway to both services with auth on, and checks every answer against the document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic
use std::time::Duration;

use harness::{schemathesis, test_auth_environment, test_token_issuer, ServiceStack};
use serde_json::Value;
use service_support::auth::{READ_SCOPE, WRITE_SCOPE};
use service_support::docs::{COMMAND_DOCUMENT_PATH, QUERY_DOCUMENT_PATH};

/// Test cases per operation and phase: enough to reach every rule's edges (the coverage phase
/// sends them all), few enough for a couple of minutes.
const EXAMPLES: &str = "40";

async fn stack_with_auth() -> (ServiceStack, String) {
    let stack = ServiceStack::start_with(&test_auth_environment()).await;
    let token = test_token_issuer()
        .issue(
            "contract-test",
            &[READ_SCOPE, WRITE_SCOPE],
            Duration::from_secs(3600),
        )
        .expect("issue a token");
    (stack, format!("Authorization: Bearer {token}"))
}

/// Each document as served, its examples and every rule's edges (the coverage phase). The
/// generated requests and the links between operations (the fuzzing and stateful phases) run
/// once, on the union of the two, which holds every operation of both.
#[tokio::test]
async fn each_document_says_what_its_service_does_through_the_gateway() {
    let (stack, authorization) = stack_with_auth().await;
    for document in [COMMAND_DOCUMENT_PATH, QUERY_DOCUMENT_PATH] {
        let location = stack.gateway.url(document);
        let args = [
            "-H",
            &authorization,
            "-n",
            EXAMPLES,
            "--phases",
            "examples,coverage",
        ];
        let report =
            schemathesis(&location, &args).unwrap_or_else(|report| panic!("{document}:\n{report}"));
        assert!(
            report.contains(" passed") && !report.contains('❌'),
            "{document}:\n{report}"
        );
    }
}

async fn served_document(stack: &ServiceStack, authorization: &str, path: &str) -> Value {
    let (name, value) = authorization.split_once(": ").unwrap();
    harness::http_client()
        .get(stack.gateway.url(path))
        .header(name, value)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The API as the gateway serves it: both documents' paths and components in one, and the
/// command side's links into the query document made links within it.
fn union_of(command: Value, query: &Value) -> Value {
    let mut union = command;
    union["info"]["title"] = "Orders API at the gateway".into();
    for (path, item) in query["paths"].as_object().unwrap() {
        let merged = union["paths"]
            .as_object_mut()
            .unwrap()
            .entry(path.clone())
            .or_insert_with(|| serde_json::json!({}));
        for (key, value) in item.as_object().unwrap() {
            merged[key.as_str()] = value.clone();
        }
    }
    for (name, schema) in query["components"]["schemas"].as_object().unwrap() {
        union["components"]["schemas"][name.as_str()] = schema.clone();
    }
    let text = union
        .to_string()
        .replace(&format!("{QUERY_DOCUMENT_PATH}#"), "#");
    serde_json::from_str(&text).unwrap()
}

/// Runs Schemathesis with `args` on `document`, written to a file, against the stack's gateway.
fn schemathesis_on(
    stack: &ServiceStack,
    authorization: &str,
    document: &Value,
    args: &[&str],
) -> Result<String, String> {
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let gateway = stack.gateway.url("");
    let common = ["--url", &gateway, "-H", authorization, "-n", EXAMPLES];
    let outcome = schemathesis(file.to_str().unwrap(), &[&common[..], args].concat());
    std::fs::remove_dir_all(&dir).unwrap();
    outcome
}

#[tokio::test]
async fn the_api_at_the_gateway_is_both_documents_and_its_links_lead_to_the_reads() {
    let (stack, authorization) = stack_with_auth().await;
    let command = served_document(&stack, &authorization, COMMAND_DOCUMENT_PATH).await;
    let query = served_document(&stack, &authorization, QUERY_DOCUMENT_PATH).await;
    let union = union_of(command, &query);

    let report = schemathesis_on(&stack, &authorization, &union, &[])
        .unwrap_or_else(|report| panic!("{report}"));
    assert!(
        report.contains(" passed") && !report.contains('❌'),
        "{report}"
    );
    // The stateful phase followed both links of a placed order: to its cancellation, and to
    // its read with the order's consistency token, which the query side waited for.
    let requests = stack.gateway.access_log();
    assert!(
        requests
            .iter()
            .any(|line| line.contains("\"POST /orders/{id}/cancel HTTP/1.1\" 202 ")),
        "no order was cancelled:\n{report}"
    );
    let read_with_its_token = |line: &String| {
        line.contains("\"GET /orders/{id} HTTP/1.1\" 200 ")
            && line
                .split_once("consistency_token=")
                .is_some_and(|(_, token)| token.contains('.'))
    };
    assert!(
        requests.iter().any(read_with_its_token),
        "no order was read with its token:\n{report}"
    );
}

/// The command document as served, with the description's length rule changed to `max_chars`
/// while the service keeps its own: what a rule changed in code only would serve.
async fn drifted_document(stack: &ServiceStack, authorization: &str, max_chars: u64) -> Value {
    let mut document = served_document(stack, authorization, COMMAND_DOCUMENT_PATH).await;
    for variant in ["OrderWithoutPrice", "OrderWithPrice"] {
        let rule = &mut document["components"]["schemas"][variant]["properties"]["description"]
            ["maxLength"];
        assert_eq!(rule, 500, "the served rule moved: update this test");
        *rule = max_chars.into();
    }
    document
}

#[tokio::test]
async fn a_rule_that_drifts_from_the_code_is_found() {
    let (stack, authorization) = stack_with_auth().await;
    // Looser than the code: descriptions of 501 to 600 characters are valid by the document
    // and refused by the service. Stricter: 401 to 500 are invalid and accepted.
    for (max_chars, finding) in [
        (600, "Schema-valid request rejected"),
        (400, "Schema-violating request accepted"),
    ] {
        let document = drifted_document(&stack, &authorization, max_chars).await;
        let only_placing = [
            "--include-operation-id",
            "place_order",
            "--phases",
            "coverage",
        ];
        let report = schemathesis_on(&stack, &authorization, &document, &only_placing)
            .expect_err("a drifted rule went unnoticed");
        assert!(report.contains(finding), "maxLength {max_chars}:\n{report}");
    }
}
