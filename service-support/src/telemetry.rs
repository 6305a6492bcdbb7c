//! The middleware every request passes first: it settles the request id, runs the request
//! with it as the current id (for log lines) in a server span that continues the request's
//! `traceparent`, answers both (`X-Request-Id`, `traceparent` and `traceresponse`), records
//! the request's metrics and writes one access-log line, which names the route
//! (`/customers/{email}`) and never the path: paths carry emails.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::KeyValue;

use crate::metrics::HttpMetrics;
use crate::request_id::{RequestId, REQUEST_ID_HEADER};
use crate::traces::{self, FutureExt, TraceParent, TRACEPARENT_HEADER, TRACERESPONSE_HEADER};

/// Requests that matched no route share one label, so that scanners cannot grow the series.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Use with `App::wrap(actix_web::middleware::from_fn(observe))`, with [`HttpMetrics`] in the
/// app data.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = RequestId::from_headers(request.headers());
    request.extensions_mut().insert(request_id.clone());
    let metrics = request.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = request.method().to_string();
    let incoming = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok());
    let trace = if traces::recording() || incoming.is_some() {
        traces::start(SpanKind::Server, &traces::extract(incoming), || {
            let route = request
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
            (
                format!("{method} {route}"),
                vec![
                    KeyValue::new("http.request.method", method.clone()),
                    KeyValue::new("http.route", route),
                    KeyValue::new("http.request.id", request_id.as_str().to_owned()),
                ],
            )
        })
    } else {
        opentelemetry::Context::new()
    };
    let trace_parent = TraceParent::of(&trace);

    request_id
        .clone()
        .scope(
            async move {
                let mut response = next.call(request).await?;
                let status = response.status().as_u16();
                let route = response
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
                let seconds = started.elapsed().as_secs_f64();
                if let Some(metrics) = metrics {
                    metrics.record(&method, &route, status, seconds);
                }
                let headers = response.headers_mut();
                if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                    headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
                }
                if let Some(value) = trace_parent
                    .as_ref()
                    .and_then(|parent| HeaderValue::from_str(parent.as_str()).ok())
                {
                    headers.insert(HeaderName::from_static(TRACEPARENT_HEADER), value.clone());
                    headers.insert(HeaderName::from_static(TRACERESPONSE_HEADER), value);
                }
                log::info!(
                    target: "http",
                    "{method} {route} {status} {:.1}ms",
                    seconds * 1000.0
                );
                let current = opentelemetry::Context::current();
                current.span().set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                traces::end(
                    &current,
                    (status >= 500).then(|| format!("answered {status}")),
                );
                Ok(response)
            }
            .with_context(trace),
        )
        .await
}
