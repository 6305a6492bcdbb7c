//! The query side of the order system: projects order events from RabbitMQ into MongoDB read
//! models shaped for the queries, and serves every read.

pub mod broker;
pub mod config;
pub mod http;
pub mod metrics;
pub mod projection;
pub mod read_models;
pub mod rebuild;
pub mod startup;
pub mod store;
