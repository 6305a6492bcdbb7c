//! Wiring: builds the HTTP server and the outbox relay from [`Settings`].

use actix_web::web;
use service_support::broker::BrokerStatus;
use service_support::metrics::MetricsEndpoint;
use service_support::startup::{BoundServer, FrontendError, HttpFrontend, Service};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::group_commit::{Committers, OrderDesk};
use crate::http;
use crate::metrics::CommandMetrics;
use crate::outbox::{Handoff, OutboxRelay, WAITING_COMMITS};
use crate::store::{Store, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the database: {0}")]
    Database(#[from] StoreError),
    #[error(transparent)]
    Frontend(#[from] FrontendError),
}

/// The command service, bound to its ports and ready to run.
pub struct Application {
    server: BoundServer,
    relay: OutboxRelay,
    committers: Option<Committers>,
}

impl Application {
    /// Runs pending migrations, binds the listeners (port 0 picks a free one) and builds the
    /// servers and the relay. Nothing is served until [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let frontend = HttpFrontend::new(&settings.auth, &settings.http.listen, &http::openapi())?;
        let (handoff, handed_off) = Handoff::new(settings.outbox.claim_lease(), WAITING_COMMITS);
        let store = Store::new(&settings.database).handing_off_to(handoff);
        store.run_migrations().await?;

        let broker_status = BrokerStatus::default();
        let metrics = CommandMetrics::new(store.clone(), broker_status.clone());
        let relay = OutboxRelay::new(
            store.clone(),
            handed_off,
            settings.broker.clone(),
            settings.outbox.clone(),
            broker_status.clone(),
            metrics.relay.clone(),
        );
        let (desk, committers) = OrderDesk::new(
            store.clone(),
            settings.group_commit.clone(),
            metrics.group_commit.clone(),
        );
        let metrics_endpoint =
            MetricsEndpoint::bind(&settings.metrics, metrics.registry, metrics.sampler)
                .map_err(FrontendError::Listen)?;

        let store = web::Data::new(store);
        let desk = web::Data::new(desk);
        let broker_status = web::Data::new(broker_status);
        let max_body_bytes = settings.http.max_body_bytes;
        let admin_token = web::Data::new(http::AdminToken(settings.admin.token.clone()));
        let server = frontend.bind(
            &settings.http.listen,
            (metrics.http, metrics_endpoint),
            move |config| {
                config
                    .app_data(http::json_config(max_body_bytes))
                    .app_data(web::Data::new(http::BodyLimit(max_body_bytes)))
                    .app_data(store.clone())
                    .app_data(desk.clone())
                    .app_data(broker_status.clone())
                    .app_data(admin_token.clone());
                http::routes(config);
            },
        )?;

        Ok(Self {
            server,
            relay,
            committers,
        })
    }
}

impl Service for Application {
    fn server(&self) -> &BoundServer {
        &self.server
    }

    /// The relay, and with group commit the committers: once stopped, the committers commit
    /// what is queued and the relay publishes what is pending.
    fn spawn_tasks(self, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) -> BoundServer {
        tasks.spawn(self.relay.run(shutdown.clone()));
        if let Some(committers) = self.committers {
            tasks.spawn(committers.run(shutdown.clone()));
        }
        self.server
    }
}
