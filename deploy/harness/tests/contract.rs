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

/// `request` with `authorization`, a header line as Schemathesis's `-H` takes it.
fn authorized(request: reqwest::RequestBuilder, authorization: &str) -> reqwest::RequestBuilder {
    let (name, value) = authorization.split_once(": ").unwrap();
    request.header(name, value)
}

async fn served_document(stack: &ServiceStack, authorization: &str, path: &str) -> Value {
    let request = harness::http_client().get(stack.gateway.url(path));
    authorized(request, authorization)
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

/// Every operation of `document`: its path, its method and the operation.
fn operations(document: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().iter();
            methods.map(move |(method, operation)| (path.as_str(), method.as_str(), operation))
        })
}

/// The value of a link's runtime expression (`$response.body#/…` or `$response.header.…`) in
/// the answer it belongs to.
fn evaluate(expression: &str, headers: &reqwest::header::HeaderMap, body: &Value) -> String {
    if let Some(pointer) = expression.strip_prefix("$response.body#") {
        let value = body.pointer(pointer);
        let value = value.unwrap_or_else(|| panic!("{expression}: not in {body}"));
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned)
    } else if let Some(name) = expression.strip_prefix("$response.header.") {
        let value = headers
            .get(name)
            .unwrap_or_else(|| panic!("{expression}: no header"));
        value.to_str().unwrap().to_owned()
    } else {
        panic!("{expression}: not an expression this test evaluates")
    }
}

/// Follows `link`, from an answer with `headers` and `body`, as `document` states it: the
/// operation it names (by id or by reference), each parameter where that operation takes it.
/// The status its target answered, and the target's documented success.
async fn follow(
    stack: &ServiceStack,
    authorization: &str,
    document: &Value,
    link: &Value,
    (headers, body): (&reqwest::header::HeaderMap, &Value),
) -> (u16, u16) {
    let escape = |path: &str| path.replace('~', "~0").replace('/', "~1");
    let (path, method, operation) = operations(document)
        .find(|(path, method, operation)| match link.get("operationId") {
            Some(id) => operation["operationId"] == *id,
            None => link["operationRef"] == format!("#/paths/{}/{method}", escape(path)),
        })
        .unwrap_or_else(|| panic!("the link leads to no operation: {link}"));
    let mut url = path.to_owned();
    let mut query = Vec::new();
    let mut request_headers = reqwest::header::HeaderMap::new();
    let parameters = operation["parameters"].as_array().unwrap();
    for (name, expression) in link["parameters"].as_object().unwrap() {
        let value = evaluate(expression.as_str().unwrap(), headers, body);
        let parameter = parameters
            .iter()
            .find(|parameter| parameter["name"] == *name);
        let parameter = parameter.unwrap_or_else(|| panic!("{path} takes no {name}"));
        match parameter["in"].as_str().unwrap() {
            "path" => url = url.replace(&format!("{{{name}}}"), &value),
            "query" => query.push((name.clone(), value)),
            "header" => {
                request_headers.insert(
                    reqwest::header::HeaderName::try_from(name.as_str()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            place => panic!("{name} in {place}: not a place this test fills"),
        }
    }
    let request = harness::http_client()
        .request(
            method.to_uppercase().parse().unwrap(),
            stack.gateway.url(&url),
        )
        .query(&query)
        .headers(request_headers);
    let mut request = authorized(request, authorization);
    // A link may give the body; the ones here take none, so the target gets the empty object
    // (none of them requires a field).
    if operation.get("requestBody").is_some() {
        let empty = serde_json::json!({});
        request = request.json(link.get("requestBody").unwrap_or(&empty));
    }
    let answer = request.send().await.unwrap();
    let documented = operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .find(|status| status.starts_with('2'))
        .unwrap_or_else(|| panic!("{method} {path} documents no success"));
    (answer.status().as_u16(), documented.parse().unwrap())
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

    // Schemathesis's stateful phase follows the links too, but which ones its search reaches
    // depends on what the API answers: each link of a placed order is followed here, as the
    // document states it. The read first, which waits for the order with its token.
    let placed = authorized(
        harness::http_client().post(stack.gateway.url("/orders")),
        &authorization,
    )
    .json(&serde_json::json!({
        "description": "a link's order", "quantity": 1,
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(placed.status(), 202);
    let headers = placed.headers().clone();
    let body: Value = placed.json().await.unwrap();
    let links = operations(&union)
        .find(|(_, _, operation)| operation["operationId"] == "place_order")
        .map(|(_, _, operation)| operation["responses"]["202"]["links"].clone())
        .unwrap();
    let mut names: Vec<&String> = links.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["CancelOrder", "GetOrder"], "the links: {links}");
    for name in ["GetOrder", "CancelOrder"] {
        let link = &links[name];
        let (status, documented) =
            follow(&stack, &authorization, &union, link, (&headers, &body)).await;
        assert_eq!(status, documented, "{name}: {link}");
    }
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
