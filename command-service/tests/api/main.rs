#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod outbox;
mod place_order;
mod robustness;
