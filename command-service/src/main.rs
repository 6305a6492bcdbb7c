use std::process::ExitCode;

use clap::{Parser, Subcommand};
use command_service::config::Settings;
use command_service::startup::Application;
use command_service::store::Store;
use service_support::cli::IssueToken;
use service_support::startup::{run, with_settings};

/// Accepts orders and cancellations, commits each with its event to PostgreSQL, and relays the
/// events to RabbitMQ. Settings come from config/*.toml and APP_-prefixed variables
/// (docs/configuration.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pending database migrations, then serve the API and relay the outbox (the
    /// default).
    Serve,
    /// Run the pending database migrations and exit.
    Migrate,
    /// Print a development bearer token signed with APP_AUTH__HS256_SECRET.
    IssueToken(IssueToken),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => with_settings(serve).await,
        Command::Migrate => with_settings(migrate).await,
        Command::IssueToken(request) => request.run(),
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let traces = settings.traces.clone();
    run("command-service", &traces, Application::build(settings)).await
}

async fn migrate(settings: Settings) -> ExitCode {
    match Store::new(&settings.database).run_migrations().await {
        Ok(applied) if applied.is_empty() => {
            println!("the database is up to date: no migration to run");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            println!(
                "applied {} migrations: {}",
                applied.len(),
                applied.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("migration failed: {error}");
            ExitCode::FAILURE
        }
    }
}
