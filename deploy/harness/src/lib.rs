//! Everything the tests need from the real servers, in one place.
//!
//! Each test gets its own PostgreSQL database, RabbitMQ vhost and MongoDB database, named
//! by [`unique_name`], so tests run in parallel without seeing each other's data, and dropped
//! when the test's guard is (a test run leaves none behind). The servers
//! themselves are started by `deploy/test` (or are already running); their addresses come from
//! the environment it exports, with the local defaults below.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

mod amqp;
mod gateway;
mod http;
mod jaeger;
mod listings;
mod polling;
mod ports;
mod private;
mod process;
mod read_store;
mod scrape;
mod sockets;
mod stack;
mod validators;

pub use amqp::{take_message, EventTap, TestPublisher};
pub use gateway::{Gateway, GATEWAY_TEMPLATE};
pub use http::http_client;
pub use jaeger::{
    jaeger_otlp_url, jaeger_query_url, new_trace_parent, trace_spans, traces_tagged,
    tracing_environment, RecordedSpan,
};
pub use listings::{assert_listings_match_postgres, listing_pages, walk_listing, walk_pages};
pub use polling::{eventually, json_when_ok};
pub use ports::{Lookout, ReservedPort};
pub use private::{PrivatePostgres, PrivateRabbit, PrivateRabbitCluster};
pub use process::{binary, run_in_background, InProcess, ServiceProcess};
pub use read_store::{index_names, Durability, PrivateReadStore, ReadStoreKind};
pub use scrape::{metric, scrape_metrics};
pub use sockets::{command_lines, listening_sockets, ListeningSocket};
pub use stack::{stack_admin_token, ServiceStack, PROJECTION_QUEUE};
pub use validators::{
    assert_document_describes_service, concrete_path, openapi_operations, openapi_problems,
    run_validator, schemathesis, validator, yaml_documents,
};

use std::future::Future;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A fresh, random name for what one test creates, under this checkout's prefix
/// (`TEST_NAME_PREFIX`, which `deploy/test` sets), so that a later run can tell its own
/// leftovers from another checkout's running tests.
pub fn unique_name() -> String {
    format!(
        "{}_{}",
        env_or("TEST_NAME_PREFIX", "test"),
        Uuid::new_v4().simple()
    )
}

/// A test's own PostgreSQL database, dropped (with whatever is still connected) when this is
/// dropped, so that a test run leaves nothing behind.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

/// A new, empty PostgreSQL database.
pub fn fresh_postgres_database() -> TestDatabase {
    let admin_url = env_or(
        "POSTGRES_ADMIN_URL",
        "postgres://cqrs:cqrs@127.0.0.1:5432/postgres",
    );
    let name = unique_name();
    let mut admin = PgConnection::establish(&admin_url)
        .unwrap_or_else(|error| panic!("cannot connect to PostgreSQL at {admin_url}: {error}"));
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
    TestDatabase {
        url: format!("{base}/{name}"),
        name,
        admin_url,
    }
}

impl Drop for TestDatabase {
    /// New connections are refused first: a connection pool of the test's app may still be
    /// reconnecting, and one that got in between would make the drop fail.
    fn drop(&mut self) {
        let name = &self.name;
        let dropped = PgConnection::establish(&self.admin_url)
            .map_err(|error| error.to_string())
            .and_then(|mut admin| {
                let mut outcome = Ok(0);
                for _ in 0..5 {
                    outcome = diesel::sql_query(format!(
                        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
                    ))
                    .execute(&mut admin)
                    .and_then(|_| {
                        diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                    });
                    let gone = matches!(&outcome, Err(error) if error.to_string().contains("does not exist"));
                    if outcome.is_ok() || gone {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                outcome.map(|_| ()).map_err(|error| error.to_string())
            });
        if let Err(error) = dropped {
            eprintln!("warning: test database {name} not dropped: {error}");
        }
    }
}

/// The management API of the shared broker, as its administrator.
struct BrokerApi {
    url: String,
    user: String,
    password: String,
    client: reqwest::Client,
}

impl BrokerApi {
    fn from_env() -> Self {
        Self {
            url: env_or("RABBITMQ_API_URL", "http://127.0.0.1:15672"),
            user: env_or("RABBITMQ_API_USER", "cqrs"),
            password: env_or("RABBITMQ_API_PASSWORD", "cqrs"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self.request(method, format!("{}/api{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await
    }

    /// A request to the management API's `url`, as its administrator.
    fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .basic_auth(&self.user, Some(&self.password))
    }
}

/// The repository's root directory (the workspace's).
pub fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A test's own RabbitMQ vhost; dropping it deletes the vhost and the users
/// [`service_users`] made for it.
#[derive(Debug)]
pub struct TestVhost {
    /// The vhost's AMQP URL as the administrator.
    pub url: String,
    name: String,
}

/// A new RabbitMQ vhost the test user may use fully.
pub async fn fresh_vhost() -> TestVhost {
    let api = BrokerApi::from_env();
    let base_url = env_or("AMQP_BASE_URL", "amqp://cqrs:cqrs@127.0.0.1:5672");
    let name = unique_name();
    api.send(reqwest::Method::PUT, &format!("/vhosts/{name}"), None)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("cannot create vhost through {}: {error}", api.url));
    let vhost = TestVhost {
        url: format!("{base_url}/{name}"),
        name,
    };
    api.send(
        reqwest::Method::PUT,
        &format!("/permissions/{}/{}", vhost.name, api.user),
        Some(serde_json::json!({ "configure": ".*", "write": ".*", "read": ".*" })),
    )
    .await
    .and_then(reqwest::Response::error_for_status)
    .expect("grant vhost permissions");
    vhost
}

impl TestVhost {
    /// Closes the vhost's connections that call themselves `connection_name`, as an operator's
    /// forced close in the management UI does, once at least one is open; how many it closed.
    pub async fn close_connections(&self, connection_name: &str) -> usize {
        let api = BrokerApi::from_env();
        let listing = format!("/vhosts/{}/connections", self.name);
        let names: Vec<String> = eventually(
            &format!(
                "a connection named {connection_name} in vhost {}",
                self.name
            ),
            Duration::from_secs(30),
            || async {
                let response = api.send(reqwest::Method::GET, &listing, None).await.ok()?;
                let connections: serde_json::Value = response.json().await.ok()?;
                let names: Vec<String> = connections
                    .as_array()?
                    .iter()
                    .filter(|connection| {
                        connection["client_properties"]["connection_name"] == connection_name
                    })
                    .filter_map(|connection| connection["name"].as_str().map(str::to_owned))
                    .collect();
                (!names.is_empty()).then_some(names)
            },
        )
        .await;
        for name in &names {
            let mut url = reqwest::Url::parse(&format!("{}/api/connections", api.url))
                .expect("the management API's URL");
            url.path_segments_mut()
                .expect("an HTTP URL has a path")
                .push(name);
            api.request(reqwest::Method::DELETE, url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .unwrap_or_else(|error| panic!("cannot close connection {name}: {error}"));
        }
        names.len()
    }

    /// The name of the vhost's user for `role` (`publisher` or `consumer`).
    fn service_user(&self, role: &str) -> String {
        format!("{}_{role}", self.name)
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let paths = [
            format!("/vhosts/{}", self.name),
            format!("/users/{}", self.service_user("publisher")),
            format!("/users/{}", self.service_user("consumer")),
        ];
        run_to_completion(async move {
            let api = BrokerApi::from_env();
            for path in paths {
                match api.send(reqwest::Method::DELETE, &path, None).await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {}
                    Ok(response) => eprintln!("warning: DELETE {path}: {}", response.status()),
                    Err(error) => eprintln!("warning: DELETE {path}: {error}"),
                }
            }
        });
    }
}

/// A test's own database on the MongoDB-wire server, dropped when this is dropped.
#[derive(Debug)]
pub struct TestMongoDatabase {
    pub uri: String,
    pub name: String,
}

/// The MongoDB-wire server's URI and a database name no other test uses.
pub fn fresh_mongo_database() -> TestMongoDatabase {
    TestMongoDatabase {
        uri: env_or("MONGODB_URI", "mongodb://127.0.0.1:27017"),
        name: unique_name(),
    }
}

impl Drop for TestMongoDatabase {
    fn drop(&mut self) {
        let (uri, name) = (self.uri.clone(), self.name.clone());
        run_to_completion(async move {
            let dropped = async {
                mongodb::Client::with_uri_str(&uri)
                    .await?
                    .database(&name)
                    .drop()
                    .await
            };
            if let Err(error) = dropped.await {
                eprintln!("warning: test database {name} not dropped from {uri}: {error}");
            }
        });
    }
}

/// Runs `work` to completion on a thread and runtime of its own: a `Drop` may run inside a
/// runtime, where blocking on another would panic.
fn run_to_completion(work: impl Future<Output = ()> + Send + 'static) {
    let finished = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cleanup runtime")
            .block_on(work);
    })
    .join();
    if finished.is_err() {
        eprintln!("warning: a test clean-up panicked");
    }
}

/// The AMQP URLs of the two least-privileged users `deploy/rabbitmq/service-users.sh` creates
/// in a test vhost, named after it.
#[derive(Debug, Clone)]
pub struct ServiceUsers {
    pub publisher_url: String,
    pub consumer_url: String,
}

/// Runs the same script as `deploy/up` and docker-compose for `vhost`, with `queue` as the
/// projection queue; the users go with the vhost.
pub fn service_users(test_vhost: &TestVhost, queue: &str) -> ServiceUsers {
    let (base, vhost) = test_vhost.url.rsplit_once('/').expect("a vhost URL");
    let host = base.rsplit_once('@').map_or(base, |(_, host)| host);
    let password = Uuid::new_v4().simple().to_string();
    let api = BrokerApi::from_env();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rabbitmq/service-users.sh");
    let output = std::process::Command::new("sh")
        .arg(script)
        .env("RABBITMQ_API_URL", &api.url)
        .env("RABBITMQ_API_USER", &api.user)
        .env("RABBITMQ_API_PASSWORD", &api.password)
        .env("RABBITMQ_VHOST", vhost)
        .env("PUBLISHER_USER", test_vhost.service_user("publisher"))
        .env("CONSUMER_USER", test_vhost.service_user("consumer"))
        .env("PUBLISHER_PASSWORD", &password)
        .env("CONSUMER_PASSWORD", &password)
        .env("PROJECTION_QUEUE", queue)
        .output()
        .expect("run deploy/rabbitmq/service-users.sh");
    assert!(
        output.status.success(),
        "service-users.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let url = |role: &str| {
        format!(
            "amqp://{}:{password}@{host}/{vhost}",
            test_vhost.service_user(role)
        )
    };
    ServiceUsers {
        publisher_url: url("publisher"),
        consumer_url: url("consumer"),
    }
}

/// A key pair made for the tests of RS256 tokens only; it signs nothing real.
pub const TEST_RS256_PRIVATE_KEY: &str = include_str!("../keys/test-rs256-private.pem");
pub const TEST_RS256_PUBLIC_KEY: &str = include_str!("../keys/test-rs256-public.pem");
/// The issuer and audience of the tokens tests sign.
pub const TEST_ISSUER: &str = "https://issuer.test.invalid";
pub const TEST_AUDIENCE: &str = "orders-api";

/// The HS256 secret of this test process, made when first asked for: no value printed in the
/// repository opens a stack.
pub fn test_hs256_secret() -> &'static str {
    static SECRET: std::sync::LazyLock<String> = std::sync::LazyLock::new(random_secret);
    &SECRET
}

/// 64 hexadecimal digits from the system's random source.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Auth on with HS256, [`test_hs256_secret`], [`TEST_ISSUER`] and [`TEST_AUDIENCE`], for a
/// service started in the test's process.
pub fn enable_test_auth(settings: &mut service_support::auth::AuthSettings) {
    settings.enabled = true;
    settings.algorithm = service_support::auth::TokenAlgorithm::HS256;
    settings.hs256_secret = test_hs256_secret().into();
    TEST_ISSUER.clone_into(&mut settings.issuer);
    TEST_AUDIENCE.clone_into(&mut settings.audience);
}

/// The same settings as environment variables, for services started as processes.
pub fn test_auth_environment() -> Vec<(&'static str, String)> {
    vec![
        ("APP_AUTH__ENABLED", "true".to_owned()),
        ("APP_AUTH__ALGORITHM", "HS256".to_owned()),
        ("APP_AUTH__HS256_SECRET", test_hs256_secret().to_owned()),
        ("APP_AUTH__ISSUER", TEST_ISSUER.to_owned()),
        ("APP_AUTH__AUDIENCE", TEST_AUDIENCE.to_owned()),
    ]
}

/// Signs tokens that services with [`enable_test_auth`] or [`test_auth_environment`] accept.
pub fn test_token_issuer() -> service_support::auth::TokenIssuer {
    service_support::auth::TokenIssuer::hs256(test_hs256_secret(), TEST_AUDIENCE, TEST_ISSUER)
}
