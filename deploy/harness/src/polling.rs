use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` every 25 ms until it returns `Some`, or panics after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `GET url` until it answers 200 (refused connections included, for a server still
/// starting) and returns the JSON body; panics after `deadline`.
pub async fn json_when_ok(
    client: &reqwest::Client,
    url: &str,
    deadline: Duration,
) -> serde_json::Value {
    eventually(&format!("GET {url} to answer 200"), deadline, || async {
        let response = client.get(url).send().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    })
    .await
}

/// Polls until something accepts connections on 127.0.0.1:`port`; panics after `deadline` with
/// `what`.
pub async fn accepting_connections(what: &str, port: u16, deadline: Duration) {
    eventually(what, deadline, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
}
