use std::process::ExitCode;

use clap::Parser;
use loadgen::Options;

#[tokio::main]
async fn main() -> ExitCode {
    match loadgen::run(Options::parse()).await {
        Ok(report) => {
            println!("{}", report.table());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loadgen failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}
