#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod projection;
mod queries;
