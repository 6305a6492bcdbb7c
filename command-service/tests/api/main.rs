#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

mod auth;
mod cancel_order;
mod cli;
mod event_log;
mod group_commit;
mod helpers;
mod idempotency;
mod operability;
mod outbox;
mod place_order;
mod robustness;
