use service_support::startup::HTTP_KEEP_ALIVE;

/// The HTTP client tests talk to services and the gateway with. It drops a pooled connection
/// idle for half the services' keep-alive: a request written on a pooled connection just as the
/// server closes it for idleness fails with `IncompleteMessage`, as a test that ran a slow
/// validator between two requests once did.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(HTTP_KEEP_ALIVE / 2)
        .build()
        .expect("HTTP client")
}
