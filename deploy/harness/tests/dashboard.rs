//! The Grafana dashboard compose provisions (`deploy/grafana/`): every metric it queries is
//! exposed by the real services (both scraped here, as their release-shaped binaries), so a
//! renamed metric fails here rather than leaving an empty panel; and its datasource is the one
//! provisioned beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{scrape_metrics, yaml_documents, ServiceStack};
use serde_json::Value;

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana")
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(grafana_dir().join("dashboards/orders.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every PromQL expression of the dashboard's panels.
fn expressions(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect()
}

/// PromQL's aggregation operators, which may stand before their `by` clause.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names `expression` selects: identifiers outside label matchers, label lists,
/// strings and ranges that are not functions, aggregations or keywords.
fn metric_names(expression: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut names = BTreeSet::new();
    let mut chars = expression.chars().peekable();
    let mut identifier = String::new();
    let mut previous_keyword = false;
    let mut flush = |identifier: &mut String, next: Option<char>, previous: &mut bool| {
        if identifier.is_empty() {
            return;
        }
        let word = std::mem::take(identifier);
        if KEYWORDS.contains(&word.as_str()) {
            *previous = true;
        } else if next != Some('(')
            && !AGGREGATIONS.contains(&word.as_str())
            && !word.starts_with(|c: char| c.is_ascii_digit())
        {
            names.insert(word);
        }
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.' {
            identifier.push(c);
            continue;
        }
        let next = if c == ' ' {
            chars.peek().copied().filter(|next| *next == '(')
        } else {
            Some(c)
        };
        flush(&mut identifier, next, &mut previous_keyword);
        let closing = match c {
            '{' => Some('}'),
            '[' => Some(']'),
            '"' => Some('"'),
            '(' if previous_keyword => Some(')'),
            _ => None,
        };
        if c != ' ' {
            previous_keyword = false;
        }
        if let Some(closing) = closing {
            for skipped in chars.by_ref() {
                if skipped == closing {
                    break;
                }
            }
        }
    }
    flush(&mut identifier, None, &mut previous_keyword);
    names
}

/// Every sample name a metrics page can expose, from its `# TYPE` lines: a counter `x` is
/// sampled as `x_total`, a histogram as `x_bucket`, `x_sum` and `x_count`.
fn exposed_names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .flat_map(|line| {
            let (name, kind) = line.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            suffixes.iter().map(move |suffix| format!("{name}{suffix}"))
        })
        .collect()
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, instance) (rate(http_request_duration_seconds_bucket{job="x", route=~"/a|b"}[$__rate_interval]))) / max without (queue) (projection_queue_messages) + up"#,
    );
    let expected: BTreeSet<String> = [
        "http_request_duration_seconds_bucket",
        "projection_queue_messages",
        "up",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names, expected);
}

#[test]
fn a_name_no_service_exposes_is_found_missing() {
    let page =
        "# TYPE events_applied counter\nevents_applied_total 3\n# TYPE lag_seconds histogram\n";
    let exposed = exposed_names(page);
    assert!(exposed.contains("events_applied_total"));
    assert!(exposed.contains("lag_seconds_bucket"));
    assert!(!exposed.contains("events_applied"));
    assert!(!exposed.contains("events_renamed_total"));
}

#[test]
fn the_dashboard_uses_the_provisioned_datasource_and_dashboard_folder() {
    let datasources =
        yaml_documents(&grafana_dir().join("provisioning/datasources/prometheus.yml")).remove(0);
    let uid = datasources["datasources"][0]["uid"].as_str().unwrap();
    let dashboard = dashboard();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
        }
    }
    let providers =
        yaml_documents(&grafana_dir().join("provisioning/dashboards/orders.yml")).remove(0);
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let compose = yaml_documents(&grafana_dir().join("../../docker-compose.yml")).remove(0);
    let mounts = compose["services"]["grafana"]["volumes"].to_string();
    assert!(
        mounts.contains(&format!("./deploy/grafana/dashboards:{path}")),
        "compose does not mount the dashboards where the provider reads them: {mounts}"
    );
}

/// The Explore view a panel link opens: its data source's uid and its query's service.
fn explored(url: &str) -> (String, String) {
    let query = url
        .strip_prefix("/explore?")
        .unwrap_or_else(|| panic!("a link into Grafana's Explore: {url}"));
    let parameters: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let panes = &parameters
        .iter()
        .find(|(name, _)| name == "panes")
        .expect("the Explore link names its panes")
        .1;
    let panes: Value = serde_json::from_str(panes).unwrap();
    let pane = panes.as_object().unwrap().values().next().unwrap();
    assert_eq!(pane["range"]["from"], "${__from}", "the panel's time range");
    let query = &pane["queries"][0];
    (
        query["datasource"]["uid"].as_str().unwrap().to_owned(),
        query["service"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_latency_panel_links_to_the_traces_in_the_provisioned_jaeger() {
    let datasources =
        yaml_documents(&grafana_dir().join("provisioning/datasources/prometheus.yml")).remove(0);
    let jaeger = datasources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|source| source["type"] == "jaeger")
        .expect("Jaeger is a provisioned data source");
    let compose = yaml_documents(&grafana_dir().join("../../docker-compose.yml")).remove(0);
    assert!(compose["services"]["jaeger"]["image"]
        .as_str()
        .unwrap()
        .starts_with("jaegertracing/jaeger:"));
    assert_eq!(jaeger["url"], "http://jaeger:16686", "compose's Jaeger");
    let dashboard = dashboard();
    let latency_panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|panel| panel["fieldConfig"]["defaults"]["unit"] == "s")
        .collect();
    assert!(latency_panels.len() >= 4);
    for panel in latency_panels {
        let links = panel["links"].as_array();
        assert!(
            links.is_some_and(|links| !links.is_empty()),
            "{} shows a latency and links no traces",
            panel["title"]
        );
        for link in links.into_iter().flatten() {
            let (uid, service) = explored(link["url"].as_str().unwrap());
            assert_eq!(uid, jaeger["uid"].as_str().unwrap(), "{}", panel["title"]);
            assert!(["command-service", "query-service"].contains(&service.as_str()));
        }
    }
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exposed_by_the_services() {
    let stack = ServiceStack::start().await;
    let client = harness::http_client();
    let dashboard = dashboard();
    let expressions = expressions(&dashboard);
    assert!(expressions.len() >= 10, "{expressions:?}");
    let queried: BTreeSet<String> = expressions
        .iter()
        .flat_map(|expression| metric_names(expression))
        .collect();
    // Scrape-time gauges (the queue depths) appear once the consumer is attached.
    let mut missing = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut exposed = BTreeSet::new();
        for service in [&stack.command, &stack.query] {
            let address = format!("http://127.0.0.1:{}", service.metrics_port());
            exposed.extend(exposed_names(&scrape_metrics(&client, &address).await));
        }
        missing = queried.difference(&exposed).cloned().collect();
        if missing.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("queried by the dashboard but exposed by no service: {missing:?}");
}
