use std::process::ExitCode;

use query_service::config::Settings;
use query_service::startup::Application;

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
