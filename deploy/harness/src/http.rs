use std::time::Duration;

/// How long a test client keeps an idle connection: well under the services' keep-alive
/// (actix-web's 5 s). A request written on a pooled connection just as the server closes it
/// for idleness fails with `IncompleteMessage`; a test that ran a slow validator between two
/// requests once did.
const IDLE_CONNECTION_LIFETIME: Duration = Duration::from_secs(2);

/// The HTTP client tests talk to services and the gateway with.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(IDLE_CONNECTION_LIFETIME)
        .build()
        .expect("HTTP client")
}
