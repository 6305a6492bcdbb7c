//! Everything the tests need from the real servers, in one place.
//!
//! Each test gets its own PostgreSQL database, RabbitMQ vhost and MongoDB database, named
//! `test_<random>`, so tests run in parallel without seeing each other's data. The servers
//! themselves are started by `deploy/test` (or are already running); their addresses come from
//! the environment it exports, with the local defaults below.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

mod amqp;
mod gateway;
mod polling;
mod private;
mod process;
mod scrape;
mod sockets;
mod stack;
mod validators;

pub use amqp::{take_message, EventTap, TestPublisher};
pub use gateway::Gateway;
pub use polling::{eventually, json_when_ok};
pub use private::{PrivateFerret, PrivatePostgres, PrivateRabbit};
pub use process::{free_port, ServiceProcess};
pub use scrape::{metric, scrape_metrics};
pub use sockets::{listening_sockets, ListeningSocket};
pub use stack::{ServiceStack, STACK_ADMIN_TOKEN};
pub use validators::{
    concrete_path, openapi_operations, openapi_problems, paths_without_header, run_validator,
    unserved_operations, validator,
};

use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A fresh, randomly named resource prefix for one test.
pub fn unique_name() -> String {
    format!("test_{}", Uuid::new_v4().simple())
}

/// A new, empty PostgreSQL database; returns its URL.
pub fn fresh_postgres_database() -> String {
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
    format!("{base}/{name}")
}

/// A new RabbitMQ vhost the test user may use fully; returns its AMQP URL.
pub async fn fresh_vhost() -> String {
    let api = env_or("RABBITMQ_API_URL", "http://127.0.0.1:15672");
    let user = env_or("RABBITMQ_API_USER", "cqrs");
    let password = env_or("RABBITMQ_API_PASSWORD", "cqrs");
    let base_url = env_or("AMQP_BASE_URL", "amqp://cqrs:cqrs@127.0.0.1:5672");
    let vhost = unique_name();
    let client = reqwest::Client::new();
    client
        .put(format!("{api}/api/vhosts/{vhost}"))
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("cannot create vhost through {api}: {error}"));
    client
        .put(format!("{api}/api/permissions/{vhost}/{user}"))
        .basic_auth(&user, Some(&password))
        .json(&serde_json::json!({ "configure": ".*", "write": ".*", "read": ".*" }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("grant vhost permissions");
    format!("{base_url}/{vhost}")
}

/// The MongoDB-wire server's URI and a database name no other test uses.
pub fn fresh_mongo_database() -> (String, String) {
    (
        env_or("MONGODB_URI", "mongodb://127.0.0.1:27017"),
        unique_name(),
    )
}

/// The AMQP URLs of the two least-privileged users `deploy/rabbitmq/service-users.sh` creates
/// in a test vhost, named after it.
#[derive(Debug, Clone)]
pub struct ServiceUsers {
    pub publisher_url: String,
    pub consumer_url: String,
}

/// Runs the same script as `deploy/up` and docker-compose for `vhost_url`'s vhost (a URL from
/// [`fresh_vhost`]), with `queue` as the projection queue.
pub fn service_users(vhost_url: &str, queue: &str) -> ServiceUsers {
    let (base, vhost) = vhost_url.rsplit_once('/').expect("a vhost URL");
    let host = base.rsplit_once('@').map_or(base, |(_, host)| host);
    let password = Uuid::new_v4().simple().to_string();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rabbitmq/service-users.sh");
    let output = std::process::Command::new("sh")
        .arg(script)
        .env(
            "RABBITMQ_API_URL",
            env_or("RABBITMQ_API_URL", "http://127.0.0.1:15672"),
        )
        .env("RABBITMQ_API_USER", env_or("RABBITMQ_API_USER", "cqrs"))
        .env(
            "RABBITMQ_API_PASSWORD",
            env_or("RABBITMQ_API_PASSWORD", "cqrs"),
        )
        .env("RABBITMQ_VHOST", vhost)
        .env("PUBLISHER_USER", format!("{vhost}_publisher"))
        .env("CONSUMER_USER", format!("{vhost}_consumer"))
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
    let url = |role: &str| format!("amqp://{vhost}_{role}:{password}@{host}/{vhost}");
    ServiceUsers {
        publisher_url: url("publisher"),
        consumer_url: url("consumer"),
    }
}

/// A key pair made for the tests of RS256 tokens only; it signs nothing real.
pub const TEST_RS256_PRIVATE_KEY: &str = include_str!("../keys/test-rs256-private.pem");
pub const TEST_RS256_PUBLIC_KEY: &str = include_str!("../keys/test-rs256-public.pem");
/// An HS256 secret for tests (32 bytes, the least the services accept).
pub const TEST_HS256_SECRET: &str = "test-secret-of-thirty-two-bytes!";
