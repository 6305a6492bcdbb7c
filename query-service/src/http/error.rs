//! Every error a query endpoint can return, mapped to a status and a JSON body here and nowhere
//! else. A read the database cannot serve is 503 with `Retry-After`; only a bug is a 500.

use actix_web::error::QueryPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use service_support::auth::AuthError;
use service_support::errors::{self, ErrorAnswer, RETRY_AFTER_SECONDS};

use crate::projection::TooManyWaiting;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("parameter {name}: {message}")]
    InvalidParameter { name: &'static str, message: String },
    #[error("header {name}: {message}")]
    InvalidHeader { name: &'static str, message: String },
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error("no {0} with that id")]
    NotFound(&'static str),
    /// A read of another owner's without the scope that allows it: answered as auth answers.
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("no such resource")]
    UnknownRoute,
    #[error("method not allowed: this service only answers reads")]
    MethodNotAllowed,
    #[error("the read model has not applied {token} yet after waiting {} ms; retry, or read without the token", waited.as_millis())]
    NotYetConsistent {
        token: shared_events::ConsistencyToken,
        waited: std::time::Duration,
    },
    #[error("too many reads wait for the read model on this replica; retry shortly")]
    TooManyWaiting(#[from] TooManyWaiting),
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
            Self::Auth(_) => "insufficient_scope",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotYetConsistent { .. } => "not_yet_consistent",
            Self::TooManyWaiting(_) => "too_many_waiting",
            Self::Unavailable(_) => "unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::TimedOut(_) => Self::Unavailable(error),
            StoreError::Operation(_) | StoreError::Refused(_) => Self::Unexpected(error),
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
            Self::Auth(error) => error.status_code(),
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotYetConsistent { .. } | Self::TooManyWaiting(_) | Self::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Auth(error) = self {
            return error.error_response();
        }
        let answer = ErrorAnswer::to(self, self.status_code(), self.code());
        match self {
            Self::InvalidParameter { name, .. } => answer.detail("parameter", name),
            Self::InvalidHeader { name, .. } => answer.detail("header", name),
            Self::NotYetConsistent { token, .. } => answer
                .detail("consistencyToken", token.to_string())
                .retry_after(1),
            Self::TooManyWaiting(_) => answer.retry_after(1),
            Self::Unavailable(_) => answer.retry_after(RETRY_AFTER_SECONDS),
            _ => answer,
        }
        .finish()
    }
}

/// Turns actix's query-string extractor failures into [`ApiError`]s.
pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidQuery(error.to_string()).into()
}

/// Answers what no route took: 405 for a known path called with a method it does not take,
/// 404 otherwise.
pub async fn no_route(request: HttpRequest) -> HttpResponse {
    errors::no_route(&request, ApiError::MethodNotAllowed, ApiError::UnknownRoute)
}
