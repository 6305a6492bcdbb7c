#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

mod cli;
mod consistency;
mod deadlines;
mod helpers;
mod operability;
mod projection;
mod queries;
