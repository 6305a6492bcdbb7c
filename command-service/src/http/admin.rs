//! Operator endpoints, behind a bearer token (`admin.token`) and never routed by the gateway.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_support::params::page_limit;

use super::ApiError;
use crate::store::Store;

const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

/// The configured admin token; empty when the endpoints are disabled.
#[derive(Clone)]
pub struct AdminToken(pub SecretString);

/// Compares in time independent of where the strings differ, so that the token cannot be
/// guessed byte by byte from response times.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

fn authorize(request: &HttpRequest, token: &AdminToken) -> Result<(), ApiError> {
    let token = token.0.expose_secret();
    if token.is_empty() {
        return Err(ApiError::AdminDisabled);
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same_secret(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[derive(Debug, Deserialize)]
pub struct EventLogParams {
    /// Return events after this position (default 0, the start of the log).
    after: Option<String>,
    /// Events per page, 1 to 1000 (default 500).
    limit: Option<String>,
}

/// `GET /admin/events?after=&limit=`: the event log in position order, for rebuilding read
/// models. `lastPosition` is the end of the log when the page was read. Needs the operator
/// token (`admin.token`), not a user token; 403 when no token is configured.
#[get("/admin/events")]
pub async fn events(
    request: HttpRequest,
    params: web::Query<EventLogParams>,
    token: web::Data<AdminToken>,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    authorize(&request, &token)?;
    let after = match &params.after {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|after| *after >= 0)
            .ok_or_else(|| ApiError::InvalidParameter {
                name: "after",
                message: format!("must be a position from 0, got {text:?}"),
            })?,
    };
    let limit = page_limit(params.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE).map_err(|message| {
        ApiError::InvalidParameter {
            name: "limit",
            message,
        }
    })?;
    Ok(HttpResponse::Ok().json(store.event_log_page(after, limit).await?))
}
