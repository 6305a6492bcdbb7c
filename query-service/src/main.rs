use std::process::ExitCode;

use clap::{Parser, Subcommand};
use query_service::broker::{count_dead_letters, dead_letter_queue_name, replay_dead_letters};
use query_service::config::Settings;
use query_service::rebuild::{plan_rebuild, rebuild_read_models, Progress};
use query_service::startup::Application;
use service_support::cli::IssueToken;
use service_support::startup::{run, with_settings};

/// Projects the order events into MongoDB read models and serves every read. Settings come
/// from config/*.toml and APP_-prefixed variables (docs/configuration.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume the events into the read models and serve reads (the default).
    Serve,
    /// Move every message parked in the dead-letter queue back to the projection's queue.
    ReplayDeadLetters {
        /// Say how many messages would move, and move none.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rebuild the read models into a new generation from the command service's event log
    /// (rebuild.event_log_url, with ADMIN_TOKEN) while serving goes on, then switch to it.
    RebuildReadModels {
        /// Say which generation would be built from how many events, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a development bearer token signed with APP_AUTH__HS256_SECRET.
    IssueToken(IssueToken),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => with_settings(serve).await,
        Command::ReplayDeadLetters { dry_run: true } => with_settings(replay_dry_run).await,
        Command::ReplayDeadLetters { dry_run: false } => with_settings(replay).await,
        Command::RebuildReadModels { dry_run: true } => with_settings(rebuild_dry_run).await,
        Command::RebuildReadModels { dry_run: false } => with_settings(rebuild).await,
        Command::IssueToken(request) => request.run(),
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let traces = settings.traces.clone();
    run("query-service", &traces, Application::build(settings)).await
}

async fn replay_dry_run(settings: Settings) -> ExitCode {
    let from = dead_letter_queue_name(&settings.broker.queue);
    match count_dead_letters(&settings.broker).await {
        Ok(count) => {
            println!(
                "dry run: would replay {count} messages from {from} to {}; nothing was moved",
                settings.broker.queue
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("cannot count the messages in {from}: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn replay(settings: Settings) -> ExitCode {
    let from = dead_letter_queue_name(&settings.broker.queue);
    match replay_dead_letters(&settings.broker).await {
        Ok(count) => {
            println!(
                "replayed {count} messages from {from} to {}",
                settings.broker.queue
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("replay from {from} failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn rebuild_dry_run(settings: Settings) -> ExitCode {
    match plan_rebuild(&settings).await {
        Ok(plan) => {
            println!(
                "dry run: would rebuild generation {} from the {} events of the event log at {} \
                 (and those published meanwhile, captured in {}), then make it active in place \
                 of generation {}; nothing was written",
                plan.next(),
                plan.log_end,
                settings.rebuild.event_log_url,
                plan.capture_queue,
                plan.active
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("cannot plan the rebuild: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn rebuild(settings: Settings) -> ExitCode {
    let report = rebuild_read_models(&settings, |progress| match progress {
        Progress::Replaying(replayed) => println!(
            "replayed {}/{} events ({:.0} events/s)",
            replayed.replayed, replayed.total, replayed.per_second
        ),
        Progress::IndexBuilt(built) => println!(
            "index {} of {} built in {:.1} s",
            built.index,
            built.collection,
            built.took.as_secs_f64()
        ),
    })
    .await;
    match report {
        Ok(report) => {
            println!(
                "generation {} is active: {} events replayed and {} captured live in {:.1} s; \
                 {} orders and {} customers, verified against the events",
                report.generation,
                report.replayed,
                report.captured,
                report.elapsed.as_secs_f64(),
                report.orders,
                report.customers
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("rebuild failed: {error}");
            ExitCode::FAILURE
        }
    }
}
