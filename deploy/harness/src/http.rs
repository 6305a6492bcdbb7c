use service_support::startup::CLIENT_IDLE_TIMEOUT;

/// The HTTP client tests talk to services and the gateway with. It drops a pooled connection
/// before the services would: a request written on a pooled connection just as the server
/// closes it for idleness fails with `IncompleteMessage`, as a test that ran a slow validator
/// between two requests once did.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
        .build()
        .expect("HTTP client")
}
