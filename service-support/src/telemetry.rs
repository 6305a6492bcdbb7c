//! The middleware every request passes first: it settles the request id, runs the request
//! with it as the current id (for log lines), answers it in `X-Request-Id`, records the
//! request's metrics and writes one access-log line, which names the route (`/customers/{email}`)
//! and never the path: paths carry emails.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::metrics::HttpMetrics;
use crate::request_id::{RequestId, REQUEST_ID_HEADER};

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

    request_id
        .clone()
        .scope(async move {
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
            if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            log::info!(
                target: "http",
                "{method} {route} {status} {:.1}ms",
                seconds * 1000.0
            );
            Ok(response)
        })
        .await
}
