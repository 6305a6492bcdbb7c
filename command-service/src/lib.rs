//! The command side of the order system: accepts commands, commits them to PostgreSQL with
//! their events in a transactional outbox, and relays those events to RabbitMQ.

pub mod broker;
pub mod config;
pub mod domain;
pub mod group_commit;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod startup;
pub mod store;
