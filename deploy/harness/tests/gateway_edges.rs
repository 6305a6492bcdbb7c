//! The gateway's own answers, as a careless or hostile client meets them through the real
//! nginx running `deploy/nginx/gateway.conf.template`: every answer is the API's JSON error
//! shape without nginx's version, methods the API does not take are 405 on every path, HEAD
//! works where GET does, the request id a client sees is the one both services log, redirects
//! name no host, the access logs name routes and never an email, slow clients are cut off
//! without holding up others, browsers reach the API only from the origins listed, and idle
//! connections to the services are closed by the gateway before the services close them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::time::Duration;

use harness::ServiceStack;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read off the wire: status, header lines (lower-cased names) and body.
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
}

/// Sends `request` as bytes and reads until nginx closes the connection.
async fn raw(port: u16, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("nginx closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn the_gateway_s_own_errors_are_json_and_name_no_nginx_version() {
    let stack = ServiceStack::start().await;
    let port = stack.gateway.port();
    let long_target = format!(
        "GET /orders?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let long_header = format!(
        "GET /orders HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a broken request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a target too long",
            long_target.into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            "a header too large",
            long_header.into_bytes(),
            400,
            "bad_request",
        ),
        (
            "an unknown transfer coding",
            b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"
                .to_vec(),
            501,
            "not_implemented",
        ),
    ];
    for (what, request, status, error) in cases {
        let response = raw(port, &request).await;
        assert_eq!(response.status, status, "{what}: {}", response.body);
        assert_eq!(response.json()["error"], error, "{what}");
        assert_eq!(response.header("server"), Some("nginx"), "{what}");
    }
}

#[tokio::test]
async fn a_request_without_host_reaches_the_service() {
    let stack = ServiceStack::start().await;
    let response = raw(stack.gateway.port(), b"GET /orders HTTP/1.0\r\n\r\n").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.json().is_array(), "{}", response.body);
}

#[tokio::test]
async fn methods_the_api_does_not_take_are_405_and_head_works_where_get_does() {
    let stack = ServiceStack::start().await;
    let client = harness::http_client();
    let id = "01935f3a-1c00-7000-8000-000000000001";
    // Each resource's Allow is what the two documents together give it, and HEAD with GET.
    let resources = [
        ("/orders".to_owned(), "GET, HEAD, POST"),
        (format!("/orders/{id}"), "GET, HEAD"),
        (format!("/orders/{id}/cancel"), "POST"),
        ("/customers".to_owned(), "GET, HEAD"),
        ("/customers/ada@example.com".to_owned(), "GET, HEAD"),
        ("/customers/ada@example.com/orders".to_owned(), "GET, HEAD"),
    ];
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS", "GET", "POST"] {
        for (path, allow) in &resources {
            if allow.split(", ").any(|allowed| allowed == method) {
                continue;
            }
            let response = client
                .request(method.parse().unwrap(), stack.gateway.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(
                response.headers()["allow"].to_str().unwrap(),
                *allow,
                "{method} {path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
        }
    }
    for path in ["/orders", "/customers"] {
        let response = client.head(stack.gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert_eq!(response.text().await.unwrap(), "", "HEAD {path}");
    }
}

#[tokio::test]
async fn the_request_id_a_client_sees_is_one_the_services_accept() {
    let stack = ServiceStack::start().await;
    let client = harness::http_client();
    let answered = |given: &str| {
        let request = client
            .get(stack.gateway.url("/orders"))
            .header("x-request-id", given);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(answered("client-id-42").await, "client-id-42");
    for unusable in ["x".repeat(5_000), "<script> alert".to_owned()] {
        let id = answered(&unusable).await;
        assert_ne!(id, unusable);
        assert!(
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()),
            "{id:?}"
        );
    }
}

#[tokio::test]
async fn the_docs_redirect_names_no_host_taken_from_the_request() {
    let stack = ServiceStack::start().await;

    let response = raw(
        stack.gateway.port(),
        b"GET /docs HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    )
    .await;

    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("/docs/"));
}

#[tokio::test]
async fn the_access_logs_name_routes_never_a_customer_s_email() {
    let stack = ServiceStack::start().await;
    let client = harness::http_client();
    let placed = client
        .post(stack.gateway.url("/orders"))
        .json(&serde_json::json!({
            "description": "Tea", "quantity": 1, "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada.lovelace@example.com",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let paths = [
        "/customers/ada.lovelace@example.com",
        "/customers/ada.lovelace@example.com/orders",
        "/orders?email=ada.lovelace%40example.com",
    ];
    for path in paths {
        client.get(stack.gateway.url(path)).send().await.unwrap();
    }

    // nginx writes a request's line once its answer is sent: the last one may still be coming.
    let log: Vec<String> = harness::eventually(
        "a gateway access line for every request",
        Duration::from_secs(10),
        || async {
            let log: Vec<String> = stack
                .gateway
                .access_log()
                .into_iter()
                .filter(|line| !line.contains(" /health "))
                .collect();
            (log.len() > paths.len()).then_some(log)
        },
    )
    .await;
    assert_eq!(log.len(), 1 + paths.len(), "{log:#?}");
    for route in [
        "\"POST /orders HTTP/1.1\" 202 ",
        "\"GET /customers/{email} HTTP/1.1\" ",
        "\"GET /customers/{email}/orders HTTP/1.1\" ",
        "\"GET /orders HTTP/1.1\" 200 ",
    ] {
        assert!(
            log.iter().any(|line| line.contains(route)),
            "{route}: {log:#?}"
        );
    }
    assert!(
        !log.iter().any(|line| line.contains("lovelace")),
        "{log:#?}"
    );
    for service in [&stack.command, &stack.query] {
        let lines: Vec<String> = service
            .log_lines()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            lines
                .iter()
                .any(|line| line.contains("/customers/{email}") || line.contains("POST /orders")),
            "no access line: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|line| line.contains("lovelace")),
            "{lines:#?}"
        );
    }
}

/// Opens a connection and sends `bytes`, leaving it open.
async fn held(port: u16, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// What nginx did with a connection within a wait.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// An answer: its status and body (read as far as its Content-Length).
    Answered(u16, String),
    /// Closed without an answer.
    Closed,
    /// Still open, nothing said.
    Silent,
}

async fn outcome_within(stream: &mut TcpStream, wait: Duration) -> Outcome {
    let mut bytes = Vec::new();
    let read_answer = async {
        let mut chunk = [0_u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return true;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            }
        }
    };
    let ended = tokio::time::timeout(wait, read_answer).await.is_ok();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok());
    match (status, text.split_once("\r\n\r\n")) {
        (Some(status), Some((_, body))) => Outcome::Answered(status, body.to_owned()),
        _ if ended => Outcome::Closed,
        _ => Outcome::Silent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_hold_up_a_normal_read() {
    const SLOW_HEADERS: usize = 300;
    const SLOW_BODIES: usize = 300;
    const PER_ADDRESS: usize = 256;
    let stack = ServiceStack::start().await;
    let port = stack.gateway.port();

    // Clients that never finish their headers, and clients that send a body's first byte and
    // stop, all from 127.0.0.1.
    let mut slow_headers = Vec::new();
    for _ in 0..SLOW_HEADERS {
        slow_headers.push(held(port, b"GET /orders HTTP/1.1\r\nHost: x\r\nX-Slow: ").await);
    }
    let mut slow_bodies = Vec::new();
    for _ in 0..SLOW_BODIES {
        slow_bodies.push(
            held(
                port,
                b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{",
            )
            .await,
        );
    }

    // A normal read from another address answers at once.
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let response = client
            .get(stack.gateway.url("/orders"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        took.push(started.elapsed());
    }
    took.sort();
    assert!(
        took[2] < Duration::from_millis(50),
        "a read took {:?} (median) beside {} slow clients",
        took[2],
        SLOW_HEADERS + SLOW_BODIES
    );

    // Past the requests in progress one address may have, a JSON 429 at once; the rest are
    // cut off when their body stalls (client_body_timeout, 5 s): nginx closes them.
    let outcomes = futures::future::join_all(
        slow_bodies
            .iter_mut()
            .map(|stream| outcome_within(stream, Duration::from_secs(20))),
    )
    .await;
    let refused: Vec<&String> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Answered(429, body) => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), SLOW_BODIES - PER_ADDRESS);
    for body in refused {
        let error: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body:?}"));
        assert_eq!(error["error"], "too_many_connections");
    }
    let closed = outcomes
        .iter()
        .filter(|outcome| **outcome == Outcome::Closed)
        .count();
    assert_eq!(closed, PER_ADDRESS, "{outcomes:?}");
    drop(slow_headers);
}

/// A CORS preflight through the gateway for `method` on `path`, from `origin`.
async fn preflight(
    client: &reqwest::Client,
    stack: &ServiceStack,
    path: &str,
    method: &str,
    origin: &str,
) -> reqwest::Response {
    client
        .request(reqwest::Method::OPTIONS, stack.gateway.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_an_allow_list_no_other_site_may_call_the_api_from_a_browser() {
    let stack = ServiceStack::start().await;
    let client = harness::http_client();

    for (path, method) in [
        ("/orders", "POST"),
        ("/orders", "GET"),
        ("/customers", "GET"),
    ] {
        let response = preflight(&client, &stack, path, method, "https://shop.example.com").await;
        assert!(
            !response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    }
    let read = client
        .get(stack.gateway.url("/orders"))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert!(read.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn listed_origins_may_call_the_api_from_a_browser_and_no_other() {
    const SHOP: &str = "https://shop.example.com";
    let stack =
        ServiceStack::start_with(&[("APP_HTTP__CORS_ALLOWED_ORIGINS", SHOP.to_owned())]).await;
    let client = harness::http_client();

    for (path, method) in [
        ("/orders", "POST"),
        ("/orders", "GET"),
        (
            "/orders/01935f3a-1c00-7000-8000-000000000001/cancel",
            "POST",
        ),
        ("/customers/ada@example.com", "GET"),
    ] {
        let allowed = preflight(&client, &stack, path, method, SHOP).await;
        assert_eq!(allowed.status(), 200, "{method} {path}");
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            SHOP,
            "{method} {path}"
        );
        let refused = preflight(&client, &stack, path, method, "https://evil.example").await;
        assert_eq!(refused.status(), 403, "{method} {path}");
        assert!(refused
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"],
            "cors_refused"
        );
    }
    let placed = client
        .post(stack.gateway.url("/orders"))
        .header("origin", SHOP)
        .json(&serde_json::json!({
            "description": "Tea", "quantity": 1, "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada@example.com",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    assert_eq!(placed.headers()["access-control-allow-origin"], SHOP);
    let exposed = placed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-consistency-token"), "{exposed}");
    let elsewhere = client
        .get(stack.gateway.url("/orders"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(elsewhere
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// nginx writes a request on a pooled upstream connection without knowing whether the service
/// is closing it, and does not retry a POST whose request was sent: each upstream pool must
/// let its idle connections go before the services' keep-alive does.
#[test]
fn the_gateway_closes_idle_connections_to_the_services_before_they_do() {
    let template = std::fs::read_to_string(harness::repository().join(harness::GATEWAY_TEMPLATE))
        .expect("read the gateway template");
    let mut upstreams = 0;
    for block in template.split("upstream ").skip(1) {
        let body = block.split("\n}").next().unwrap();
        let timeout = body
            .lines()
            .find_map(|line| line.trim().strip_prefix("keepalive_timeout "))
            .unwrap_or_else(|| panic!("upstream {body} sets no keepalive_timeout (nginx: 60 s)"));
        let seconds: u64 = timeout
            .trim_end_matches(';')
            .strip_suffix('s')
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or_else(|| panic!("keepalive_timeout {timeout} is not in whole seconds"));
        assert!(
            Duration::from_secs(seconds) < service_support::startup::HTTP_KEEP_ALIVE,
            "upstream {body} keeps idle connections {seconds} s, as long as the services or longer"
        );
        upstreams += 1;
    }
    assert_eq!(upstreams, 2, "the command and query upstreams");
}
