use std::process::ExitCode;

use query_service::broker::{dead_letter_queue_name, replay_dead_letters};
use query_service::config::Settings;
use query_service::startup::Application;

const USAGE: &str = "usage: query-service [replay-dead-letters]
  (no argument)        serve reads and project events
  replay-dead-letters  move every parked message back to the projection's queue";

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            log::error!("refusing to start, the configuration is invalid: {error}");
            return ExitCode::FAILURE;
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => serve(settings).await,
        Some("replay-dead-letters") => replay(settings).await,
        Some(_) => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(error) => {
            log::error!("refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    log::info!("query service listening on port {}", application.port());
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("query service failed: {error}");
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
