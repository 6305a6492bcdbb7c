//! One order followed through every process: the trace a client starts (or the service starts
//! for it) holds the command service's request and group commit, the relay's time in the
//! outbox and its publish, the projection's delivery and the reads that continue it, in causal
//! order, in the real Jaeger; with no collector, orders are served as before and the spans
//! dropped are counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic
use std::time::Duration;

use harness::{
    eventually, jaeger_query_url, metric, new_trace_parent, scrape_metrics, trace_spans,
    traces_tagged, tracing_environment, RecordedSpan, ReservedPort, ServiceStack,
};
use serde_json::{json, Value};
use shared_events::CONSISTENCY_TOKEN_HEADER;

const EXPORTED_WITHIN: Duration = Duration::from_secs(60);

fn order(email: &str) -> Value {
    json!({
        "description": "Traced tea", "quantity": 2, "firstName": "Ada",
        "lastName": "Lovelace", "email": email,
    })
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("the answer has {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The id a `202` answered for a placed order.
async fn order_id(placed: reqwest::Response) -> String {
    placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn named<'a>(spans: &'a [RecordedSpan], service: &str, name: &str) -> &'a RecordedSpan {
    spans
        .iter()
        .find(|span| span.service == service && span.name == name)
        .unwrap_or_else(|| {
            let seen: Vec<_> = spans.iter().map(|s| (&s.service, &s.name)).collect();
            panic!("no span {service} / {name} in {seen:?}")
        })
}

/// The trace once Jaeger holds every span in `expected` (service, name).
async fn trace_with(
    client: &reqwest::Client,
    trace_id: &str,
    expected: &[(&str, &str)],
) -> Vec<RecordedSpan> {
    eventually(
        &format!("trace {trace_id} with {expected:?} in Jaeger"),
        EXPORTED_WITHIN,
        || async {
            let spans = trace_spans(client, trace_id).await;
            expected
                .iter()
                .all(|(service, name)| {
                    spans
                        .iter()
                        .any(|span| span.service == *service && span.name == *name)
                })
                .then_some(spans)
        },
    )
    .await
}

#[tokio::test]
async fn an_order_and_its_read_are_one_trace_across_both_services_in_causal_order() {
    // Nothing the services start themselves is sampled: only the client's sampled flag
    // records this trace (parent-based sampling).
    let stack = ServiceStack::start_with(&tracing_environment("0")).await;
    let client = harness::http_client();
    let (trace_id, traceparent) = new_trace_parent();
    let client_span = traceparent.split('-').nth(2).unwrap().to_owned();
    let request_id = format!("trace-test-{trace_id}");

    let placed = client
        .post(stack.gateway.url("/orders"))
        .header("traceparent", &traceparent)
        .header("x-request-id", &request_id)
        .json(&order("traced@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let answered_parent = header(&placed, "traceparent");
    assert_eq!(header(&placed, "traceresponse"), answered_parent);
    assert!(
        answered_parent.starts_with(&format!("00-{trace_id}-")) && answered_parent.ends_with("-01"),
        "the answer continues the client's trace: {answered_parent}"
    );
    let token = header(&placed, CONSISTENCY_TOKEN_HEADER);
    let id = order_id(placed).await;

    // The client reads its write in the same trace.
    let read = client
        .get(stack.gateway.url(&format!("/orders/{id}")))
        .header("traceparent", &traceparent)
        .header(CONSISTENCY_TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    let spans = trace_with(
        &client,
        &trace_id,
        &[
            ("command-service", "POST /orders"),
            ("command-service", "group commit"),
            ("command-service", "outbox wait"),
            ("command-service", "publish orders.events"),
            ("query-service", "deliver"),
            ("query-service", "GET /orders/{id}"),
            ("query-service", "consistency wait"),
        ],
    )
    .await;
    let post = named(&spans, "command-service", "POST /orders");
    let group_commit = named(&spans, "command-service", "group commit");
    let outbox = named(&spans, "command-service", "outbox wait");
    // A publish the broker refused (the queue not bound yet) is retried: the confirmed one.
    let publish = spans
        .iter()
        .find(|span| span.name == "publish orders.events" && !span.failed())
        .expect("a confirmed publish");
    let deliver = named(&spans, "query-service", "deliver");
    let get = named(&spans, "query-service", "GET /orders/{id}");
    let wait = named(&spans, "query-service", "consistency wait");

    assert_eq!(post.parent.as_deref(), Some(client_span.as_str()));
    assert_eq!(
        answered_parent.split('-').nth(2),
        Some(post.span_id.as_str())
    );
    assert_eq!(post.tags["order.id"], json!(id));
    assert_eq!(post.tags["http.request.id"], json!(request_id));
    assert_eq!(group_commit.parent.as_deref(), Some(post.span_id.as_str()));
    for later in [outbox, publish, deliver] {
        assert_eq!(
            later.parent.as_deref(),
            Some(post.span_id.as_str()),
            "{} continues the request's span",
            later.name
        );
        assert_eq!(later.tags["order.id"], json!(id), "{}", later.name);
    }
    assert_eq!(get.parent.as_deref(), Some(client_span.as_str()));
    assert_eq!(wait.parent.as_deref(), Some(get.span_id.as_str()));
    // Causal order, on the one clock of this machine.
    assert!(post.start <= group_commit.start && group_commit.end() <= post.end());
    // Jaeger keeps start and duration in whole microseconds, each rounded.
    assert!(
        outbox.end() <= publish.start + 1,
        "publish after the outbox"
    );
    assert!(
        group_commit.start <= publish.start,
        "publish after the commit began"
    );
    assert!(
        publish.start <= deliver.start,
        "delivered after it was published"
    );
    assert!(!post.failed());

    // The batch that wrote the event is a trace of its own, linked to this one.
    let batch = eventually(
        "the batch's span linking the trace",
        EXPORTED_WITHIN,
        || async {
            traces_tagged(
                &client,
                "query-service",
                ("messaging.batch.message_count", "1"),
                Duration::from_secs(600),
            )
            .await
            .into_iter()
            .flatten()
            .find(|span| span.name == "project batch" && span.linked_traces.contains(&trace_id))
        },
    )
    .await;
    assert!(batch.start <= deliver.end());

    // Log lines name the trace beside the request id.
    let logged =
        stack.command.log_lines().into_iter().any(|line| {
            line["requestId"] == json!(request_id) && line["traceId"] == json!(trace_id)
        });
    assert!(
        logged,
        "a command-service log line with the request and trace ids"
    );
}

#[tokio::test]
async fn a_trace_the_service_starts_follows_its_sample_ratio() {
    let stack = ServiceStack::start_with(&tracing_environment("1")).await;
    let client = harness::http_client();
    let placed = client
        .post(stack.gateway.url("/orders"))
        .json(&order("sampled@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let traceparent = header(&placed, "traceparent");
    assert!(traceparent.ends_with("-01"), "sampled: {traceparent}");
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();
    let id = order_id(placed).await;
    let spans = trace_with(
        &client,
        &trace_id,
        &[
            ("command-service", "POST /orders"),
            ("command-service", "publish orders.events"),
            ("query-service", "deliver"),
        ],
    )
    .await;
    assert!(named(&spans, "command-service", "POST /orders")
        .parent
        .is_none());
    // Found from the order's id, as deploy/trace finds it.
    let found = traces_tagged(
        &client,
        "command-service",
        ("order.id", &id),
        Duration::from_secs(600),
    )
    .await;
    assert!(found
        .iter()
        .flatten()
        .any(|span| span.name == "POST /orders"));

    let unsampled = ServiceStack::start_with(&tracing_environment("0")).await;
    let placed = client
        .post(unsampled.gateway.url("/orders"))
        .json(&order("unsampled@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    assert!(
        header(&placed, "traceparent").ends_with("-00"),
        "a ratio of 0 records no trace the service starts"
    );
}

#[tokio::test]
async fn without_a_collector_orders_are_served_and_dropped_spans_are_counted() {
    // Nothing listens there: every export fails at once. A queue of 4 spans overflows too.
    let nowhere = ReservedPort::new();
    let stack = ServiceStack::start_with(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", nowhere.number()),
        ),
        ("APP_TRACES__SAMPLE_RATIO", "1".to_owned()),
        ("APP_TRACES__MAX_QUEUED_SPANS", "4".to_owned()),
    ])
    .await;
    let client = harness::http_client();
    for n in 0..10 {
        let placed = client
            .post(stack.gateway.url("/orders"))
            .json(&order(&format!("uncollected-{n}@example.com")))
            .send()
            .await
            .unwrap();
        assert_eq!(placed.status(), 202);
        let token = header(&placed, CONSISTENCY_TOKEN_HEADER);
        let id = order_id(placed).await;
        let read = client
            .get(stack.gateway.url(&format!("/orders/{id}")))
            .header(CONSISTENCY_TOKEN_HEADER, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
    }
    for service in [&stack.command, &stack.query] {
        let address = format!("http://127.0.0.1:{}", service.metrics_port());
        eventually("spans dropped and counted", EXPORTED_WITHIN, || async {
            let page = scrape_metrics(&client, &address).await;
            metric(&page, "trace_spans_dropped_total").filter(|dropped| *dropped > 0.0)
        })
        .await;
    }
}

fn deploy_trace(args: &[&str]) -> std::process::Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../trace");
    std::process::Command::new(script)
        .args(args)
        .output()
        .expect("run deploy/trace")
}

#[tokio::test]
async fn deploy_trace_prints_an_order_s_trace_from_its_id_or_its_request_id() {
    let stack = ServiceStack::start_with(&tracing_environment("1")).await;
    let client = harness::http_client();
    let request_id = format!("deploy-trace-{}", uuid::Uuid::new_v4().simple());
    let placed = client
        .post(stack.gateway.url("/orders"))
        .header("x-request-id", &request_id)
        .json(&order("printed@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let trace_id = header(&placed, "traceparent")
        .split('-')
        .nth(1)
        .unwrap()
        .to_owned();
    let id = order_id(placed).await;
    trace_with(
        &client,
        &trace_id,
        &[
            ("command-service", "publish orders.events"),
            ("query-service", "deliver"),
        ],
    )
    .await;
    for wanted in [id.as_str(), request_id.as_str(), trace_id.as_str()] {
        let output = deploy_trace(&[wanted]);
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "deploy/trace {wanted}: {output:?}");
        assert!(
            printed.starts_with(&format!("trace {trace_id}")),
            "{printed}"
        );
        for line in [
            "command-service / POST /orders",
            "command-service / group commit",
            "command-service / publish orders.events",
            "query-service / deliver",
        ] {
            assert!(printed.contains(line), "{line} missing:\n{printed}");
        }
    }
    // The local Jaeger serves the page that finds the same trace (deploy/jaeger/ui).
    let page = client
        .get(format!("{}/", jaeger_query_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<title>Traces of the order system</title>"),
        "{page}"
    );
    let unknown = deploy_trace(&["no-such-order"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    let help = deploy_trace(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("Usage: deploy/trace"));
}
