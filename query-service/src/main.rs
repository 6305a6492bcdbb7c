use std::process::ExitCode;

use query_service::broker::{dead_letter_queue_name, replay_dead_letters};
use query_service::config::Settings;
use query_service::rebuild::rebuild_read_models;
use query_service::startup::Application;
use service_support::config::LayeredSettings;
use service_support::startup::{run, valid_settings};

const USAGE: &str = "usage: query-service [replay-dead-letters | rebuild-read-models]
  (no argument)        serve reads and project events
  replay-dead-letters  move every parked message back to the projection's queue
  rebuild-read-models  rebuild the read models from the command service's event log
                       (rebuild.event_log_url, ADMIN_TOKEN) and switch to them atomically";

#[tokio::main]
async fn main() -> ExitCode {
    service_support::logging::init();
    let Some(settings) = valid_settings(Settings::load()) else {
        return ExitCode::FAILURE;
    };
    match std::env::args().nth(1).as_deref() {
        None => run("query service", Application::build(settings).await).await,
        Some("replay-dead-letters") => replay(settings).await,
        Some("rebuild-read-models") => rebuild(settings).await,
        Some(_) => {
            eprintln!("{USAGE}");
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

async fn rebuild(settings: Settings) -> ExitCode {
    let report = rebuild_read_models(&settings, |progress| {
        println!(
            "replayed {}/{} events ({:.0} events/s)",
            progress.replayed, progress.total, progress.per_second
        );
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
