//! Every error a query endpoint can return, mapped to a status and a JSON body here and nowhere
//! else. A read the database cannot serve is 503 with `Retry-After`; only a bug is a 500.

use actix_web::error::QueryPayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::store::StoreError;

const RETRY_AFTER_SECONDS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("query parameter {name}: {message}")]
    InvalidParameter { name: &'static str, message: String },
    #[error("header {name}: {message}")]
    InvalidHeader { name: &'static str, message: String },
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error("no {0} with that id")]
    NotFound(&'static str),
    #[error("no such resource")]
    UnknownRoute,
    #[error("method not allowed: this service only answers reads")]
    MethodNotAllowed,
    #[error("the read model has not applied {token} yet after waiting {} ms; retry, or read without the token", waited.as_millis())]
    NotYetConsistent {
        token: shared_events::ConsistencyToken,
        waited: std::time::Duration,
    },
    #[error("the read database is unavailable; try again shortly")]
    Unavailable(#[source] StoreError),
    #[error("an unexpected error occurred")]
    Unexpected(#[source] StoreError),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameter { .. } | Self::InvalidQuery(_) => "invalid_parameter",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::NotFound(_) | Self::UnknownRoute => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotYetConsistent { .. } => "not_yet_consistent",
            Self::Unavailable(_) => "unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            StoreError::Operation(_) => Self::Unexpected(error),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidParameter { .. } | Self::InvalidHeader { .. } | Self::InvalidQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotFound(_) | Self::UnknownRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotYetConsistent { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            log::error!("{self}: {:?}", std::error::Error::source(self));
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        let mut response = HttpResponse::build(status);
        match self {
            Self::InvalidParameter { name, .. } => body["parameter"] = json!(name),
            Self::InvalidHeader { name, .. } => body["header"] = json!(name),
            Self::NotYetConsistent { token, .. } => {
                body["consistencyToken"] = json!(token.to_string());
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response.json(body)
    }
}

/// Turns actix's query-string extractor failures into [`ApiError`]s.
pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidQuery(error.to_string()).into()
}

/// Answers what no route took: 405 for a known path called with a method it does not take,
/// 404 otherwise.
pub async fn no_route(request: HttpRequest) -> HttpResponse {
    if request.resource_map().has_resource(request.path()) {
        ApiError::MethodNotAllowed.error_response()
    } else {
        ApiError::UnknownRoute.error_response()
    }
}
