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
mod stack;

pub use amqp::{take_message, EventTap, TestPublisher};
pub use gateway::Gateway;
pub use polling::{eventually, json_when_ok};
pub use private::{PrivateFerret, PrivatePostgres, PrivateRabbit};
pub use process::{free_port, ServiceProcess};
pub use stack::{ServiceStack, STACK_ADMIN_TOKEN};

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
