//! Prometheus metrics in the OpenMetrics text format, served by a server of their own on a
//! port that the gateway never routes (`metrics.port`), so that only the scraper reaches them.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds, in seconds, of [`seconds_histogram`]: 1 ms apart up to 6 ms, then about a
/// quarter apart, to 16 s, so that a p50 of 15 ms or a p99 of 50 ms can be told from its
/// neighbours.
const SECONDS_BUCKETS: [f64; 33] = [
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.010, 0.0125, 0.015, 0.020, 0.025, 0.030,
    0.040, 0.050, 0.060, 0.080, 0.100, 0.125, 0.150, 0.200, 0.250, 0.300, 0.400, 0.500, 0.750, 1.0,
    1.5, 2.0, 3.0, 5.0, 10.0, 16.0,
];

/// Request latencies and the projection lag and its steps.
pub fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    /// One of [`method_label`]'s fixed set: a client cannot make new series by inventing methods.
    pub method: &'static str,
    /// The route's pattern (`/orders/{id}`), never the raw path, so ids do not become series.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub method: &'static str,
    pub route: String,
}

/// Requests by route and status, and their latency.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<HttpRequestLabels, Counter>,
    duration: Family<HttpRouteLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Counts one answered request. `route` must be a route pattern or another value from a
    /// fixed set, never something the client wrote.
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&HttpRequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&HttpRouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// The method as a metrics label: the methods HTTP defines, and `OTHER` for anything else.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    pub dependency: &'static str,
}

/// `dependency_up{dependency="…"}`: 1 while a dependency answers, 0 while it does not.
#[derive(Debug, Clone, Default)]
pub struct DependencyStatus(Family<DependencyLabels, Gauge>);

impl DependencyStatus {
    pub fn register(registry: &mut Registry) -> Self {
        let status = Self::default();
        registry.register(
            "dependency_up",
            "Whether a dependency answered at the last scrape (1) or not (0)",
            status.0.clone(),
        );
        status
    }

    pub fn set(&self, dependency: &'static str, up: bool) {
        self.0
            .get_or_create(&DependencyLabels { dependency })
            .set(i64::from(up));
    }
}

/// Reads what is measured at scrape time (a backlog, whether a database answers) into gauges.
pub trait Sampler: Send + Sync + 'static {
    fn sample(&self) -> impl Future<Output = ()>;
}

/// `GET /metrics` on a port of its own, sampling first.
pub struct MetricsEndpoint {
    port: u16,
    server: Server,
}

impl MetricsEndpoint {
    /// Binds `settings`' address (port 0 picks a free one); nothing is served until
    /// [`MetricsEndpoint::spawn`].
    pub fn bind<S: Sampler>(
        settings: &MetricsSettings,
        registry: Arc<Registry>,
        sampler: S,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let registry = web::Data::from(registry);
        let sampler = web::Data::new(sampler);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                .app_data(sampler.clone())
                .route("/metrics", web::get().to(scrape::<S>))
        })
        .workers(1)
        .listen(listener)?
        .shutdown_timeout(1)
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves on a task of its own; the handle stops it.
    pub fn spawn(self) -> ServerHandle {
        let handle = self.server.handle();
        tokio::spawn(self.server);
        handle
    }
}

async fn scrape<S: Sampler>(registry: web::Data<Registry>, sampler: web::Data<S>) -> HttpResponse {
    sampler.sample().await;
    let mut body = String::new();
    match encode(&mut body, &registry) {
        Ok(()) => HttpResponse::Ok()
            .content_type(OPENMETRICS_CONTENT_TYPE)
            .body(body),
        Err(error) => {
            log::error!("cannot encode the metrics: {error}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Where the metrics server listens.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MetricsSettings {
    pub host: String,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    use super::HttpMetrics;

    #[test]
    fn invented_methods_share_one_series() {
        let mut registry = Registry::default();
        let metrics = HttpMetrics::register(&mut registry);
        for n in 0..100 {
            metrics.record(&format!("BREW{n}"), "/orders", 405, 0.001);
        }
        metrics.record("GET", "/orders", 200, 0.001);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let series: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("http_requests_total"))
            .collect();
        assert_eq!(series.len(), 2, "{series:#?}");
        assert!(series
            .iter()
            .any(|line| line.contains("method=\"OTHER\"") && line.ends_with(" 100")));
        assert!(!text.contains("BREW"));
    }
}
