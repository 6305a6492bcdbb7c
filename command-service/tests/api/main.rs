#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

mod cancel_order;
mod event_log;
mod helpers;
mod idempotency;
mod outbox;
mod place_order;
mod robustness;
