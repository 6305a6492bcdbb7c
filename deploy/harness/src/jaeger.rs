//! The local Jaeger that `deploy/test` starts: where the services a test starts send their
//! spans, and where the test reads the traces back through Jaeger's query API. Each test
//! finds its own traces by their ids, which it made or was answered.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use crate::env_or;

/// Where services send spans (OTLP over HTTP).
pub fn jaeger_otlp_url() -> String {
    env_or("JAEGER_OTLP_URL", "http://127.0.0.1:4318")
}

/// Jaeger's query API and page.
pub fn jaeger_query_url() -> String {
    env_or("JAEGER_QUERY_URL", "http://127.0.0.1:16686")
}

/// The environment of a service that exports its spans to the local Jaeger and records
/// `sample_ratio` of the traces it starts.
pub fn tracing_environment(sample_ratio: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger_otlp_url()),
        ("APP_TRACES__SAMPLE_RATIO", sample_ratio.to_owned()),
    ]
}

/// A new sampled W3C `traceparent` of a client's span: the trace's id and the header.
pub fn new_trace_parent() -> (String, String) {
    let trace_id = Uuid::new_v4().simple().to_string();
    let span_id = &Uuid::new_v4().simple().to_string()[..16];
    let header = format!("00-{trace_id}-{span_id}-01");
    (trace_id, header)
}

/// One span of a trace, as Jaeger's query API shows it.
#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub service: String,
    pub name: String,
    pub span_id: String,
    /// The span it is a child of (`CHILD_OF`), if any.
    pub parent: Option<String>,
    /// The traces it links to (`FOLLOWS_FROM`), as their ids.
    pub linked_traces: Vec<String>,
    /// Microseconds since the Unix epoch.
    pub start: i64,
    pub duration: i64,
    pub tags: HashMap<String, Value>,
}

impl RecordedSpan {
    pub fn end(&self) -> i64 {
        self.start + self.duration
    }

    pub fn failed(&self) -> bool {
        self.tags.get("otel.status_code") == Some(&Value::from("ERROR"))
    }
}

fn spans_of(trace: &Value) -> Vec<RecordedSpan> {
    let services: HashMap<&str, &str> = trace["processes"]
        .as_object()
        .map(|processes| {
            processes
                .iter()
                .map(|(key, process)| {
                    (
                        key.as_str(),
                        process["serviceName"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|span| {
            let references = span["references"].as_array().cloned().unwrap_or_default();
            let of_kind = |kind: &str| {
                references
                    .iter()
                    .filter(|reference| reference["refType"] == kind)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            RecordedSpan {
                service: services
                    .get(span["processID"].as_str().unwrap_or_default())
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                name: text(&span["operationName"]),
                span_id: text(&span["spanID"]),
                parent: of_kind("CHILD_OF")
                    .first()
                    .map(|reference| text(&reference["spanID"])),
                linked_traces: of_kind("FOLLOWS_FROM")
                    .iter()
                    .map(|reference| text(&reference["traceID"]))
                    .collect(),
                start: span["startTime"].as_i64().unwrap_or_default(),
                duration: span["duration"].as_i64().unwrap_or_default(),
                tags: span["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|tag| (text(&tag["key"]), tag["value"].clone()))
                    .collect(),
            }
        })
        .collect()
}

/// The spans Jaeger holds for trace `trace_id` (none if it holds no such trace).
pub async fn trace_spans(client: &reqwest::Client, trace_id: &str) -> Vec<RecordedSpan> {
    let response = client
        .get(format!("{}/api/traces/{trace_id}", jaeger_query_url()))
        .send()
        .await
        .expect("Jaeger's query API answers (deploy/test starts Jaeger)");
    if response.status() == 404 {
        return Vec::new();
    }
    assert_eq!(response.status(), 200, "GET /api/traces/{trace_id}");
    let body: Value = response.json().await.expect("a trace as JSON");
    body["data"]
        .as_array()
        .and_then(|traces| traces.first())
        .map(spans_of)
        .unwrap_or_default()
}

/// The traces of the last `lookback` whose spans by `service` carry tag `key` = `value`.
pub async fn traces_tagged(
    client: &reqwest::Client,
    service: &str,
    (key, value): (&str, &str),
    lookback: Duration,
) -> Vec<Vec<RecordedSpan>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros();
    let start = now - lookback.as_micros();
    let tags = serde_json::json!({ key: value }).to_string();
    let body: Value = client
        .get(format!("{}/api/traces", jaeger_query_url()))
        .query(&[
            ("service", service),
            ("tags", &tags),
            ("start", &start.to_string()),
            ("end", &now.to_string()),
            ("limit", "1000"),
        ])
        .send()
        .await
        .expect("Jaeger's query API answers (deploy/test starts Jaeger)")
        .json()
        .await
        .expect("traces as JSON");
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(spans_of)
        .collect()
}
