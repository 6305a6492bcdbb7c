//! Reading a service's Prometheus metrics page.

/// `GET {metrics_address}/metrics`, which must answer 200.
pub async fn scrape_metrics(client: &reqwest::Client, metrics_address: &str) -> String {
    let response = client
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200, "the metrics page");
    response.text().await.expect("the metrics page's text")
}

/// The value of the sample `name`, written with its labels as exposed
/// (`dependency_up{dependency="postgres"}`), if the page has it.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
