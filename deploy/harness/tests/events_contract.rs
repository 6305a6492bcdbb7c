//! The events' AsyncAPI document, as the gateway serves it: valid for the AsyncAPI CLI (pinned,
//! `install_asyncapi_cli` in deploy/scripts/infra.sh), and true of every message the relay
//! publishes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic
use std::path::PathBuf;
use std::time::Duration;

use harness::{
    new_trace_parent, run_validator, unique_name, EventTap, ServiceStack, PROJECTION_QUEUE,
};
use serde_json::{json, Value};
use service_support::docs::EVENTS_DOCUMENT_PATH;
use shared_events::asyncapi::message_id;
use shared_events::{ORDER_EVENTS_EXCHANGE, REQUEST_ID_HEADER, TRACEPARENT_HEADER};

/// `document` in a file of its own, for the CLI.
fn written(document: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.asyncapi.json", unique_name()));
    std::fs::write(&path, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    path
}

fn asyncapi_validate(document: &Value) -> Result<(), String> {
    let path = written(document);
    let outcome = run_validator(
        "asyncapi",
        &[
            "validate",
            path.to_str().unwrap(),
            "--fail-severity",
            "error",
        ],
    );
    std::fs::remove_file(path).unwrap();
    outcome
}

async fn served_document(stack: &ServiceStack) -> Value {
    let answer = reqwest::get(stack.gateway.url(EVENTS_DOCUMENT_PATH))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_served_document_is_valid_and_names_the_stack_s_exchange_and_queues() {
    let stack = ServiceStack::start().await;

    let document = served_document(&stack).await;

    asyncapi_validate(&document).unwrap_or_else(|report| panic!("{report}"));
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(
        document["channels"]["orderEvents"]["address"],
        ORDER_EVENTS_EXCHANGE
    );
    assert_eq!(
        document["channels"]["projection"]["address"],
        PROJECTION_QUEUE
    );
    // The CLI refuses what the specification does not allow: the check can fail.
    let mut broken = document.clone();
    broken["channels"]["orderEvents"]["address"] = json!(42);
    assert!(
        asyncapi_validate(&broken).is_err(),
        "a broken document passed"
    );
}

#[tokio::test]
async fn every_message_the_relay_publishes_is_one_the_document_describes() {
    let stack = ServiceStack::start().await;
    let document = served_document(&stack).await;
    let mut tap = EventTap::attach(&stack.amqp_url).await;
    let client = harness::http_client();
    // The order comes in a trace, so its event carries the trace's header too.
    let (_, traceparent) = new_trace_parent();
    let placed: Value = client
        .post(stack.gateway.url("/orders"))
        .header(TRACEPARENT_HEADER, &traceparent)
        .json(&json!({
            "description": "Tea", "quantity": 2, "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada@example.com", "unitPriceMinor": 450, "currency": "EUR",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cancelled = client
        .post(stack.gateway.url(&format!(
            "/orders/{}/cancel",
            placed["id"].as_str().unwrap()
        )))
        .json(&json!({"reason": "ordered twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 202);

    let mut seen = Vec::new();
    for _ in 0..2 {
        let (body, properties) = tap
            .next(Duration::from_secs(10))
            .await
            .expect("a published event");
        let envelope: Value = serde_json::from_slice(&body).unwrap();
        let event_type = properties.kind().as_ref().unwrap().as_str().to_owned();
        let version = u32::try_from(envelope["schemaVersion"].as_u64().unwrap()).unwrap();
        let id = message_id(&event_type, version);
        let message = &document["components"]["messages"][&id];
        assert!(message.is_object(), "{id} is not in the document");

        let payload = jsonschema::validator_for(&message["payload"]).unwrap();
        let errors: Vec<String> = payload
            .iter_errors(&envelope)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{id}: {errors:?}");
        let headers: serde_json::Map<String, Value> = properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    lapin::types::AMQPValue::LongString(text) => text.to_string(),
                    other => format!("{other:?}"),
                };
                (name.to_string(), Value::from(text))
            })
            .collect();
        let headers_schema = jsonschema::validator_for(&message["headers"]).unwrap();
        assert!(headers_schema.is_valid(&Value::Object(headers.clone())));
        if event_type == "OnNewOrder" {
            let carried = headers[TRACEPARENT_HEADER].as_str().unwrap();
            assert_eq!(carried.split('-').nth(1), traceparent.split('-').nth(1));
        }
        assert_eq!(
            message["correlationId"]["location"],
            format!("$message.header#/{REQUEST_ID_HEADER}")
        );
        assert_eq!(
            headers[REQUEST_ID_HEADER].as_str(),
            properties.correlation_id().as_ref().map(|id| id.as_str())
        );
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            message["contentType"].as_str()
        );
        assert_eq!(properties.delivery_mode(), &Some(2));
        seen.push(id);
    }
    seen.sort();
    assert_eq!(seen, ["OnNewOrder.v5", "OrderCancelled.v4"]);
}
