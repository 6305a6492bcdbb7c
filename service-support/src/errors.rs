//! The one shape of every error answer of both services, `{"error": code, "message": text}`
//! plus details naming what was at fault ([`crate::docs::ErrorBody`] documents it). Each
//! service maps its own error type to a status and a code in one place and builds the answer
//! here.

use actix_web::http::header::{self, TryIntoHeaderPair};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// How long a client should wait before retrying when a database is unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// An error answer being built.
pub struct ErrorAnswer {
    response: HttpResponseBuilder,
    body: Map<String, Value>,
}

impl ErrorAnswer {
    /// Starts the answer to `error`, its message the error's own text. A server error is a
    /// bug or an outage: it is logged with its chain of causes, which the answer never shows.
    pub fn to(error: &dyn std::error::Error, status: StatusCode, code: &str) -> Self {
        if status.is_server_error() {
            log::error!("{}", error_chain(error));
        }
        Self::new(status, code, error)
    }

    /// Starts an answer with `message`, logging nothing.
    pub fn new(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Self {
        let mut body = Map::new();
        body.insert("error".to_owned(), json!(code));
        body.insert("message".to_owned(), json!(message.to_string()));
        Self {
            response: HttpResponse::build(status),
            body,
        }
    }

    /// Adds a member to the body, such as the field, parameter or header at fault.
    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        self.body.insert(key.to_owned(), json!(value));
        self
    }

    pub fn header(mut self, header: impl TryIntoHeaderPair) -> Self {
        self.response.insert_header(header);
        self
    }

    pub fn retry_after(self, seconds: u32) -> Self {
        self.header((header::RETRY_AFTER, seconds.to_string()))
    }

    pub fn finish(mut self) -> HttpResponse {
        self.response.json(Value::Object(self.body))
    }
}

/// The error and each of its causes, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Answers what no route took: `method_not_allowed` for a known path called with a method
/// it does not take, `not_found` otherwise.
pub fn no_route<E: ResponseError>(
    request: &HttpRequest,
    method_not_allowed: E,
    not_found: E,
) -> HttpResponse {
    if request.resource_map().has_resource(request.path()) {
        method_not_allowed.error_response()
    } else {
        not_found.error_response()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the store failed")]
    struct StoreFailed(#[source] std::io::Error);

    #[actix_web::test]
    async fn the_body_has_the_code_the_message_and_the_details_but_no_cause() {
        let error = StoreFailed(std::io::Error::other("password authentication failed"));
        let response = ErrorAnswer::to(&error, StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            .detail("parameter", "limit")
            .retry_after(RETRY_AFTER_SECONDS)
            .finish();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"error": "unavailable", "message": "the store failed", "parameter": "limit"})
        );
    }

    #[test]
    fn the_log_line_names_every_cause() {
        let error = StoreFailed(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&error), "the store failed: connection refused");
    }
}
