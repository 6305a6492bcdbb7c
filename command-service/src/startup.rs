//! Wiring: builds the HTTP server and the outbox relay from [`Settings`].

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::broker::BrokerStatus;
use crate::config::Settings;
use crate::http;
use crate::outbox::{OutboxRelay, RelayWakeup};
use crate::store::{Store, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot listen on the HTTP port: {0}")]
    Listen(#[from] std::io::Error),
}

/// The command service, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    relay: OutboxRelay,
}

impl Application {
    /// Runs pending migrations, binds the listener (port 0 picks a free one) and builds the
    /// server and the relay. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let store = Store::new(&settings.database);
        store.run_migrations().await?;
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();

        let wakeup = RelayWakeup::default();
        let broker_status = BrokerStatus::default();
        let relay = OutboxRelay::new(
            store.clone(),
            settings.broker.clone(),
            settings.outbox.clone(),
            wakeup.clone(),
            broker_status.clone(),
        );

        let store = web::Data::new(store);
        let wakeup = web::Data::new(wakeup);
        let broker_status = web::Data::new(broker_status);
        let max_body_bytes = settings.http.max_body_bytes;
        let admin_token = web::Data::new(http::AdminToken(settings.admin.token.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
                .app_data(http::json_config(max_body_bytes))
                .app_data(web::Data::new(http::BodyLimit(max_body_bytes)))
                .app_data(store.clone())
                .app_data(wakeup.clone())
                .app_data(broker_status.clone())
                .app_data(admin_token.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .shutdown_timeout(settings.http.shutdown_timeout_secs)
        .run();

        Ok(Self {
            port,
            server,
            relay,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (SIGINT or SIGTERM: in-flight requests finish first),
    /// then lets the relay publish what is pending and stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = CancellationToken::new();
        let relay = tokio::spawn(self.relay.run(shutdown.clone()));
        let served = self.server.await;
        log::info!("HTTP server stopped; stopping the outbox relay");
        shutdown.cancel();
        if let Err(error) = relay.await {
            log::error!("outbox relay task failed: {error}");
        }
        served
    }
}
