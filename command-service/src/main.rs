use std::process::ExitCode;

use command_service::config::Settings;
use command_service::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    service_support::logging::init();
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
    log::info!(
        "command service listening on port {} (metrics on port {})",
        application.port(),
        application.metrics_port()
    );
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("command service failed: {error}");
            ExitCode::FAILURE
        }
    }
}
