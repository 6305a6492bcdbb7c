use std::process::ExitCode;

use command_service::config::Settings;
use command_service::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    // lapin logs every returned message at WARN; the relay already reports it in one line.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,lapin::returned_messages=error"),
    )
    .init();
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
    log::info!("command service listening on port {}", application.port());
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("command service failed: {error}");
            ExitCode::FAILURE
        }
    }
}
