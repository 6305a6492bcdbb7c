use std::process::ExitCode;

use command_service::config::Settings;
use command_service::startup::Application;
use service_support::config::LayeredSettings;
use service_support::startup::{run, valid_settings};

#[tokio::main]
async fn main() -> ExitCode {
    service_support::logging::init();
    let Some(settings) = valid_settings(Settings::load()) else {
        return ExitCode::FAILURE;
    };
    run("command service", Application::build(settings).await).await
}
