//! Wiring: builds the HTTP server and the event consumer from [`Settings`].

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerStatus, EventConsumer};
use crate::config::Settings;
use crate::http;
use crate::projection::Projector;
use crate::store::{ReadStore, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the read database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot listen on the HTTP port: {0}")]
    Listen(#[from] std::io::Error),
}

/// The query service, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    consumer: EventConsumer,
}

impl Application {
    /// Creates the indexes, binds the listener (port 0 picks a free one) and builds the server
    /// and the consumer. Nothing is served or consumed until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let store = ReadStore::new(&settings.mongodb).await?;
        store.ensure_indexes().await?;
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();

        let broker_status = BrokerStatus::default();
        let consumer = EventConsumer::new(
            settings.broker.clone(),
            Projector::new(store.clone()),
            broker_status.clone(),
        );

        let store = web::Data::new(store);
        let broker_status = web::Data::new(broker_status);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
                .app_data(http::query_config())
                .app_data(store.clone())
                .app_data(broker_status.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .shutdown_timeout(settings.http.shutdown_timeout_secs)
        .run();

        Ok(Self {
            port,
            server,
            consumer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves and consumes until the server stops (SIGINT or SIGTERM: in-flight requests
    /// finish first), then lets the consumer finish the event in hand and stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = CancellationToken::new();
        let consumer = tokio::spawn(self.consumer.run(shutdown.clone()));
        let served = self.server.await;
        log::info!("HTTP server stopped; stopping the event consumer");
        shutdown.cancel();
        if let Err(error) = consumer.await {
            log::error!("event consumer task failed: {error}");
        }
        served
    }
}
