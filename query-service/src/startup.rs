//! Wiring: builds the HTTP server and the event consumer from [`Settings`].

use std::time::Duration;

use actix_web::web;
use service_support::broker::BrokerStatus;
use service_support::docs::AsyncApiJson;
use service_support::metrics::MetricsEndpoint;
use service_support::startup::{BoundServer, FrontendError, HttpFrontend, Service};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broker::{events_document, EventConsumer, QueueDepthProbe};
use crate::config::Settings;
use crate::http;
use crate::metrics::QueryMetrics;
use crate::projection::{AppliedVersions, Projector};
use crate::store::{ReadStore, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the read database: {0}")]
    Database(#[from] StoreError),
    #[error(transparent)]
    Frontend(#[from] FrontendError),
}

/// The query service, bound to its ports and ready to run.
pub struct Application {
    server: BoundServer,
    consumer: EventConsumer,
    store: ReadStore,
    generation_refresh: Duration,
}

impl Application {
    /// Creates the indexes, binds the listeners (port 0 picks a free one) and builds the
    /// servers and the consumer. Nothing is served or consumed until
    /// [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let frontend = HttpFrontend::new(&settings.auth, &settings.http, &http::openapi())?;
        let store = ReadStore::new(&settings.mongodb).await?;
        store.follow_active_generation().await?;
        store.ensure_indexes().await?;
        let generation_refresh = settings.mongodb.generation_refresh();
        let max_wait = http::MaxConsistencyWait(settings.consistency.max_wait());
        let applied = AppliedVersions::new(settings.consistency.max_waiting_reads);

        let broker_status = BrokerStatus::default();
        let depth_probe = QueueDepthProbe::new(&settings.broker.queue);
        let metrics = QueryMetrics::new(
            store.clone(),
            broker_status.clone(),
            depth_probe.clone(),
            applied.clone(),
        );
        let consumer = EventConsumer::new(
            settings.broker.clone(),
            Projector::new(store.clone(), settings.broker.lanes, applied.clone()),
            broker_status.clone(),
            metrics.projection,
            depth_probe,
        );
        let metrics_endpoint =
            MetricsEndpoint::bind(&settings.metrics, metrics.registry, metrics.sampler)
                .map_err(FrontendError::Listen)?;

        let events_document = web::Data::new(AsyncApiJson::render(&events_document(
            &settings.broker.queue,
        )));
        let read_store = store.clone();
        let broker_status = web::Data::new(broker_status);
        let server = frontend.bind(
            &settings.http,
            (metrics.http, metrics_endpoint),
            move |config| {
                // Called on each HTTP worker's runtime: its reads go through a client there.
                let worker_store = read_store.on_this_runtime().unwrap_or_else(|error| {
                    log::warn!("an HTTP worker reads through the shared client: {error}");
                    read_store.clone()
                });
                config
                    .app_data(http::query_config())
                    .app_data(web::Data::new(worker_store))
                    .app_data(max_wait)
                    .app_data(applied.clone())
                    .app_data(broker_status.clone())
                    .app_data(events_document.clone());
                http::routes(config);
            },
        )?;

        Ok(Self {
            server,
            consumer,
            store,
            generation_refresh,
        })
    }
}

impl Service for Application {
    fn server(&self) -> &BoundServer {
        &self.server
    }

    /// The consumer, which finishes the batch in hand once stopped, and the follower of the
    /// active read-model generation; then the store's client is shut down (the HTTP server
    /// stopped before them).
    fn spawn_tasks(self, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) -> BoundServer {
        let store = self.store.clone();
        let consumer = self.consumer.run(shutdown.clone());
        let follower = follow_generations(self.store, self.generation_refresh, shutdown.clone());
        tasks.spawn(async move {
            tokio::join!(consumer, follower);
            store.shutdown().await;
        });
        self.server
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
