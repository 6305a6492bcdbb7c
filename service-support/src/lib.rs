//! What both services need to be operated and nothing of their domain: layered settings, the
//! broker link's status, backoff and exchange, request ids that follow a request into its
//! events and log lines, JSON or text logs, Prometheus metrics served on a port of their own,
//! bearer-token scopes, the rules a configured secret must pass, and the OpenAPI documents
//! with their docs page.

pub mod auth;
pub mod broker;
pub mod chars;
pub mod cli;
pub mod config;
pub mod cors;
pub mod docs;
pub mod errors;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod params;
pub mod request_id;
pub mod secrets;
pub mod startup;
pub mod telemetry;
pub mod traces;

pub use request_id::RequestId;
