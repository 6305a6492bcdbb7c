//! Wiring: builds the HTTP server and the event consumer from [`Settings`].

use std::net::TcpListener;
use std::time::Duration;

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

use crate::broker::EventConsumer;
use crate::config::Settings;
use crate::http;
use crate::metrics::QueryMetrics;
use crate::projection::Projector;
use crate::store::{ReadStore, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the read database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot listen on the HTTP or metrics port: {0}")]
    Listen(#[from] std::io::Error),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] AuthConfigError),
    #[error("cannot render the OpenAPI document: {0}")]
    Document(#[from] serde_json::Error),
}

/// The query service, bound to its ports and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    metrics_endpoint: MetricsEndpoint,
    consumer: EventConsumer,
    store: ReadStore,
    generation_refresh: Duration,
    customer_email_recorded: bool,
}

impl Application {
    /// Creates the indexes, binds the listeners (port 0 picks a free one) and builds the
    /// servers and the consumer. Nothing is served or consumed until
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let authenticator = web::Data::new(Authenticator::from_settings(&settings.auth)?);
        let document = web::Data::new(OpenApiJson::render(&http::openapi())?);
        let store = ReadStore::new(&settings.mongodb).await?;
        store.follow_active_generation().await?;
        store.ensure_indexes().await?;
        let customer_email_recorded = store.customer_email_recorded().await?;
        let generation_refresh = settings.mongodb.generation_refresh();
        let max_wait = http::MaxConsistencyWait(settings.consistency.max_wait());
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();

        let broker_status = BrokerStatus::default();
        let metrics = QueryMetrics::new(store.clone(), broker_status.clone());
        let consumer = EventConsumer::new(
            settings.broker.clone(),
            Projector::new(store.clone(), settings.broker.lanes),
            broker_status.clone(),
            metrics.projection,
        );
        let metrics_endpoint =
            MetricsEndpoint::bind(&settings.metrics, metrics.registry, metrics.sampler)?;
        let http_metrics = web::Data::new(metrics.http);

        let store_data = web::Data::new(store.clone());
        let broker_status = web::Data::new(broker_status);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::observe))
                .app_data(http_metrics.clone())
                .app_data(authenticator.clone())
                .app_data(document.clone())
                .app_data(http::query_config())
                .app_data(store_data.clone())
                .app_data(max_wait)
                .app_data(broker_status.clone())
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
            consumer,
            store,
            generation_refresh,
            customer_email_recorded,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_endpoint.port()
    }

    /// Serves and consumes until the server stops (SIGINT or SIGTERM: in-flight requests
    /// finish first), then lets the consumer finish the batch in hand and stop, and waits for
    /// every background task to end.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.consumer.run(shutdown.clone()));
        if !self.customer_email_recorded {
            tasks.spawn(backfill_customer_email(
                self.store.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(follow_generations(
            self.store,
            self.generation_refresh,
            shutdown.clone(),
        ));
        let metrics_server = self.metrics_endpoint.spawn();
        let served = self.server.await;
        metrics_server.stop(true).await;
        log::info!("HTTP server stopped; stopping the event consumer and background tasks");
        shutdown.cancel();
        while let Some(ended) = tasks.join_next().await {
            if let Err(error) = ended {
                log::error!("a background task failed: {error}");
            }
        }
        served
    }
}

/// Upgrades orders written before `customerEmail` existed, once per generation; until it
/// has, email filters use the nested field (correct, only slower on FerretDB).
async fn backfill_customer_email(store: ReadStore, shutdown: CancellationToken) {
    const RETRY_AFTER: Duration = Duration::from_secs(10);
    loop {
        match store.backfill_customer_email().await {
            Ok(0) => return,
            Ok(filled) => {
                log::info!("customerEmail backfilled on {filled} orders");
                return;
            }
            Err(error) => {
                log::warn!("customerEmail backfill failed ({error}); retrying in {RETRY_AFTER:?}")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
}

/// Keeps the store on the active generation of the read models until `shutdown`.
async fn follow_generations(store: ReadStore, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.follow_active_generation().await {
            Ok(Some(generation)) => log::info!("now on read-model generation {generation}"),
            Ok(None) => {}
            Err(error) => log::warn!("cannot check the active read-model generation: {error}"),
        }
    }
}
