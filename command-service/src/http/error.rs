//! Every error an endpoint can return, mapped to a status and a JSON body here and nowhere
//! else. Client mistakes are 4xx with the field at fault; a database that cannot be reached is
//! 503 with `Retry-After`; only a bug is a 500, and its details stay in the log.

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use service_support::errors::{self, ErrorAnswer, RETRY_AFTER_SECONDS};

use crate::domain::{CancelRejection, ValidationErrors};
use crate::store::{CancelOrderError, PlaceOrderError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body must be JSON in UTF-8 (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is too large{}", limit.map(|limit| format!(" (the limit is {limit} bytes)")).unwrap_or_default())]
    PayloadTooLarge { limit: Option<usize> },
    #[error("the request is invalid")]
    Validation(ValidationErrors),
    #[error("parameter {name}: {message}")]
    InvalidParameter { name: &'static str, message: String },
    #[error("the admin API is disabled: set admin.token (ADMIN_TOKEN) to enable it")]
    AdminDisabled,
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("header {name}: {message}")]
    InvalidHeader { name: &'static str, message: String },
    #[error("no such resource")]
    NotFound,
    #[error("no order with that id")]
    OrderNotFound,
    #[error("the Idempotency-Key was already used for a different request; use a new key")]
    IdempotencyKeyReused,
    #[error("the order cannot be changed: {0}")]
    Conflict(CancelRejection),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the order database is unavailable; try again shortly")]
    Unavailable(#[source] StoreError),
    #[error(
        "the connection to the order database was lost while committing: the command may or \
         may not have been applied; repeat it with the same Idempotency-Key to learn which"
    )]
    OutcomeUnknown(#[source] StoreError),
    #[error("an unexpected error occurred")]
    Unexpected(#[source] StoreError),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Validation(_) => "validation_failed",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::AdminDisabled => "admin_disabled",
            Self::Unauthorized => "unauthorized",
            Self::NotFound | Self::OrderNotFound => "not_found",
            Self::Conflict(CancelRejection::AlreadyCancelled) => "order_already_cancelled",
            Self::Conflict(CancelRejection::VersionMismatch { .. }) => "version_mismatch",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "unavailable",
            Self::OutcomeUnknown(_) => "outcome_unknown",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_outcome_unknown() {
            Self::OutcomeUnknown(error)
        } else if error.is_unavailable() {
            Self::Unavailable(error)
        } else {
            Self::Unexpected(error)
        }
    }
}

impl From<PlaceOrderError> for ApiError {
    fn from(error: PlaceOrderError) -> Self {
        match error {
            PlaceOrderError::KeyReused => Self::IdempotencyKeyReused,
            PlaceOrderError::Store(error) => error.into(),
        }
    }
}

impl From<CancelOrderError> for ApiError {
    fn from(error: CancelOrderError) -> Self {
        match error {
            CancelOrderError::NotFound => Self::OrderNotFound,
            CancelOrderError::Rejected(rejection) => Self::Conflict(rejection),
            CancelOrderError::Store(error) => error.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidHeader { .. } | Self::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            Self::AdminDisabled => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::OrderNotFound => StatusCode::NOT_FOUND,
            Self::Conflict(CancelRejection::AlreadyCancelled) => StatusCode::CONFLICT,
            Self::Conflict(CancelRejection::VersionMismatch { .. }) => {
                StatusCode::PRECONDITION_FAILED
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) | Self::OutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let answer = ErrorAnswer::to(self, self.status_code(), self.code());
        match self {
            Self::Validation(errors) => answer.detail("fields", errors.fields()),
            Self::InvalidHeader { name, .. } => answer.detail("header", name),
            Self::InvalidParameter { name, .. } => answer.detail("parameter", name),
            Self::Unauthorized => answer.header((header::WWW_AUTHENTICATE, "Bearer")),
            Self::Conflict(CancelRejection::VersionMismatch { actual, .. }) => answer
                .detail("currentVersion", actual)
                .header((header::ETAG, format!("\"{actual}\""))),
            Self::Unavailable(_) | Self::OutcomeUnknown(_) => {
                answer.retry_after(RETRY_AFTER_SECONDS)
            }
            _ => answer,
        }
        .finish()
    }
}

/// Turns actix's JSON extractor failures into [`ApiError`]s.
pub fn json_payload_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit: Some(limit) },
        // The stream's own overflow does not say which limit it hit.
        JsonPayloadError::Payload(PayloadError::Overflow) => {
            ApiError::PayloadTooLarge { limit: None }
        }
        JsonPayloadError::Deserialize(error) => ApiError::MalformedJson(error.to_string()),
        other => ApiError::MalformedJson(other.to_string()),
    }
    .into()
}

/// Answers what no route took: 405 for a known path called with a method it does not take,
/// 404 otherwise.
pub async fn no_route(request: HttpRequest) -> HttpResponse {
    errors::no_route(&request, ApiError::MethodNotAllowed, ApiError::NotFound)
}
