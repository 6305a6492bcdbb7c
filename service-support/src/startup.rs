//! What starting and stopping has in common for both services: the HTTP server with request
//! ids, metrics and bearer-token checks on every request and the service's OpenAPI document;
//! a graceful stop that lets background work finish; and `main`'s exit codes.

use std::fmt::Display;
use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use config::ConfigError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use crate::auth::{AuthConfigError, AuthSettings, Authenticator};
use crate::config::{invalid, LayeredSettings};
use crate::docs::OpenApiJson;
use crate::metrics::{HttpMetrics, MetricsEndpoint};
use crate::telemetry;
use crate::traces::{TraceSettings, Traces};
use crate::{cors, errors};

/// How long a client's connection may stay idle before the service closes it. Whatever keeps
/// idle connections to a service (the gateway's upstream pools, the tests' clients) closes them
/// sooner, so that it never writes a request on a connection the service is closing.
pub const HTTP_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long the workspace's own HTTP clients of the services (the tests', the rebuild's) keep a
/// pooled connection idle: half of [`HTTP_KEEP_ALIVE`], so that a request is never written on a
/// connection the service is closing (it would get no answer).
pub const CLIENT_IDLE_TIMEOUT: Duration =
    Duration::from_millis(HTTP_KEEP_ALIVE.as_millis() as u64 / 2);

/// Why a service's HTTP side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("cannot listen on the HTTP or metrics port: {0}")]
    Listen(#[from] std::io::Error),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] AuthConfigError),
    #[error("cannot render the OpenAPI document: {0}")]
    Document(#[from] serde_json::Error),
    #[error("invalid value for http.cors_allowed_origins: {0}")]
    CorsOrigins(String),
}

/// Where a service's HTTP server listens, on how many threads, how long a stop waits for
/// requests in flight, and which web pages may call it from a browser.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ListenSettings {
    pub host: String,
    pub port: u16,
    /// Threads serving requests; absent, one per core (actix-web's default).
    #[serde(default)]
    pub workers: Option<usize>,
    pub shutdown_timeout_secs: u64,
    /// Comma-separated origins (`https://shop.example.com`); empty: no cross-origin access.
    pub cors_allowed_origins: String,
}

impl ListenSettings {
    /// The rules a service's [`crate::config::LayeredSettings::validate`] checks for these
    /// keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == Some(0) {
            return Err(invalid("http.workers", "must be at least 1"));
        }
        Ok(())
    }
}

/// A service's HTTP side before it listens: the settings are checked and the document
/// rendered first, so that a bad configuration is refused before any database is touched.
pub struct HttpFrontend {
    authenticator: web::Data<Authenticator>,
    document: web::Data<OpenApiJson>,
    cors_origins: Vec<String>,
}

/// A service's HTTP and metrics servers, bound to their ports: nothing is served until
/// [`BoundServer::serve_until_stopped`].
pub struct BoundServer {
    server: Server,
    port: u16,
    metrics_endpoint: MetricsEndpoint,
}

impl HttpFrontend {
    /// The document is served as it is when `auth` is enabled, else without its security
    /// requirements: it says what this service enforces.
    pub fn new(
        auth: &AuthSettings,
        listen: &ListenSettings,
        document: &OpenApi,
    ) -> Result<Self, FrontendError> {
        let mut document = document.clone();
        if !auth.enabled {
            crate::docs::without_security(&mut document);
        }
        Ok(Self {
            authenticator: web::Data::new(Authenticator::from_settings(auth)?),
            document: web::Data::new(OpenApiJson::render(&document)?),
            cors_origins: cors::parse_origins(&listen.cors_allowed_origins)
                .map_err(FrontendError::CorsOrigins)?,
        })
    }

    /// Binds `listen`'s address (port 0 picks a free one) and builds a server whose routes and
    /// application data `routes` registers, beside the metrics endpoint. On SIGINT or SIGTERM,
    /// in-flight requests get `listen.shutdown_timeout_secs` to finish.
    pub fn bind<F>(
        self,
        listen: &ListenSettings,
        (http_metrics, metrics_endpoint): (HttpMetrics, MetricsEndpoint),
        routes: F,
    ) -> Result<BoundServer, FrontendError>
    where
        F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
    {
        let listener = TcpListener::bind((listen.host.as_str(), listen.port))?;
        let port = listener.local_addr()?.port();
        let http_metrics = web::Data::new(http_metrics);
        let Self {
            authenticator,
            document,
            cors_origins,
        } = self;
        let server = HttpServer::new(move || {
            let routes = routes.clone();
            App::new()
                .wrap(cors::policy(&cors_origins))
                .wrap(from_fn(errors::library_errors_as_json))
                .wrap(from_fn(telemetry::observe))
                .app_data(http_metrics.clone())
                .app_data(authenticator.clone())
                .app_data(document.clone())
                .into_utoipa_app()
                .configure(move |config| routes(config))
                .into_app()
        })
        .keep_alive(HTTP_KEEP_ALIVE);
        let server = match listen.workers {
            Some(workers) => server.workers(workers),
            None => server,
        };
        let server = server
            .listen(listener)?
            .shutdown_timeout(listen.shutdown_timeout_secs)
            .run();
        Ok(BoundServer {
            server,
            port,
            metrics_endpoint,
        })
    }
}

impl BoundServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_endpoint.port()
    }

    /// Serves until the HTTP server stops (SIGINT or SIGTERM: in-flight requests finish
    /// first), then cancels `shutdown` and waits for every task in `tasks`, so that work in
    /// hand (the relay's batch, the consumer's acknowledgements) ends before the process does.
    async fn serve_until_stopped(
        self,
        shutdown: CancellationToken,
        mut tasks: JoinSet<()>,
    ) -> std::io::Result<()> {
        let metrics_server = self.metrics_endpoint.spawn();
        let served = self.server.await;
        metrics_server.stop(true).await;
        log::info!("HTTP server stopped; stopping the background tasks");
        shutdown.cancel();
        while let Some(ended) = tasks.join_next().await {
            if let Err(error) = ended {
                log::error!("a background task failed: {error}");
            }
        }
        served
    }
}

/// A built service, as `main` runs it.
pub trait Service: Sized + Send {
    fn server(&self) -> &BoundServer;

    /// Spawns the service's background tasks into `tasks`, each to end its work in hand and
    /// return once `shutdown` is cancelled, and gives back the server they run beside.
    fn spawn_tasks(self, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) -> BoundServer;

    /// Serves until stopped, with the service's background tasks beside the servers, and
    /// waits for those tasks once the servers stopped.
    fn run_until_stopped(self) -> impl Future<Output = std::io::Result<()>> + Send {
        async move {
            let shutdown = CancellationToken::new();
            let mut tasks = JoinSet::new();
            let server = self.spawn_tasks(&shutdown, &mut tasks);
            server.serve_until_stopped(shutdown, tasks).await
        }
    }

    fn port(&self) -> u16 {
        self.server().port()
    }

    fn metrics_port(&self) -> u16 {
        self.server().metrics_port()
    }
}

/// Starts logging and reads the settings from the environment, then runs `work` with them; a
/// configuration that is refused is logged with its reason, and nothing else runs.
pub async fn with_settings<T, F, Fut>(work: F) -> ExitCode
where
    T: LayeredSettings,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    crate::logging::init();
    match T::load() {
        Ok(settings) => work(settings).await,
        Err(error) => {
            log::error!("refusing to start, the configuration is invalid: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the trace exporter `traces` asks for, builds the service `name` and runs it until
/// it stops, logging where it listens and why it failed; then exports the last spans.
pub async fn run<S: Service, E: Display>(
    name: &'static str,
    traces: &TraceSettings,
    build: impl Future<Output = Result<S, E>>,
) -> ExitCode {
    let traces = match Traces::start(name, traces) {
        Ok(traces) => traces,
        Err(error) => {
            log::error!("refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let service = match build.await {
        Ok(service) => service,
        Err(error) => {
            log::error!("refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "{name} listening on port {} (metrics on port {})",
        service.port(),
        service.metrics_port()
    );
    let code = match service.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{name} failed: {error}");
            ExitCode::FAILURE
        }
    };
    traces.shutdown();
    code
}
