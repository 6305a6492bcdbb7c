//! Wiring: builds the HTTP server and the outbox relay from [`Settings`].

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use service_support::auth::{AuthConfigError, Authenticator};
use service_support::broker::BrokerStatus;
use service_support::docs::OpenApiJson;
use service_support::metrics::MetricsEndpoint;
use service_support::telemetry;
use tokio_util::sync::CancellationToken;
use utoipa_actix_web::AppExt;

use crate::config::Settings;
use crate::http;
use crate::metrics::CommandMetrics;
use crate::outbox::{OutboxRelay, RelayWakeup};
use crate::store::{Store, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot listen on the HTTP or metrics port: {0}")]
    Listen(#[from] std::io::Error),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] AuthConfigError),
    #[error("cannot render the OpenAPI document: {0}")]
    Document(#[from] serde_json::Error),
}

/// The command service, bound to its ports and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    metrics_endpoint: MetricsEndpoint,
    relay: OutboxRelay,
}

impl Application {
    /// Runs pending migrations, binds the listeners (port 0 picks a free one) and builds the
    /// servers and the relay. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let authenticator = web::Data::new(Authenticator::from_settings(&settings.auth)?);
        let document = web::Data::new(OpenApiJson::render(&http::openapi())?);
        let store = Store::new(&settings.database);
        store.run_migrations().await?;
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();

        let wakeup = RelayWakeup::default();
        let broker_status = BrokerStatus::default();
        let metrics = CommandMetrics::new(store.clone(), broker_status.clone());
        let relay = OutboxRelay::new(
            store.clone(),
            settings.broker.clone(),
            settings.outbox.clone(),
            wakeup.clone(),
            broker_status.clone(),
            metrics.relay.clone(),
        );
        let metrics_endpoint =
            MetricsEndpoint::bind(&settings.metrics, metrics.registry, metrics.sampler)?;

        let http_metrics = web::Data::new(metrics.http);
        let store = web::Data::new(store);
        let wakeup = web::Data::new(wakeup);
        let broker_status = web::Data::new(broker_status);
        let max_body_bytes = settings.http.max_body_bytes;
        let admin_token = web::Data::new(http::AdminToken(settings.admin.token.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::observe))
                .app_data(http_metrics.clone())
                .app_data(authenticator.clone())
                .app_data(document.clone())
                .app_data(http::json_config(max_body_bytes))
                .app_data(web::Data::new(http::BodyLimit(max_body_bytes)))
                .app_data(store.clone())
                .app_data(wakeup.clone())
                .app_data(broker_status.clone())
                .app_data(admin_token.clone())
                .into_utoipa_app()
                .configure(http::routes)
                .into_app()
        })
        .listen(listener)?
        .shutdown_timeout(settings.http.shutdown_timeout_secs)
        .run();

        Ok(Self {
            port,
            server,
            metrics_endpoint,
            relay,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_endpoint.port()
    }

    /// Serves until the server stops (SIGINT or SIGTERM: in-flight requests finish first),
    /// then lets the relay publish what is pending and stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = CancellationToken::new();
        let relay = tokio::spawn(self.relay.run(shutdown.clone()));
        let metrics_server = self.metrics_endpoint.spawn();
        let served = self.server.await;
        metrics_server.stop(true).await;
        log::info!("HTTP server stopped; stopping the outbox relay");
        shutdown.cancel();
        if let Err(error) = relay.await {
            log::error!("outbox relay task failed: {error}");
        }
        served
    }
}
