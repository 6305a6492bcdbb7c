//! The one shape of every error answer of both services, `{"error": code, "message": text}`
//! plus details naming what was at fault ([`crate::docs::ErrorBody`] documents it). Each
//! service maps its own error type to a status and a code in one place and builds the answer
//! here.

use actix_cors::CorsError;
use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, TryIntoHeaderPair};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
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

/// Use with `App::wrap(from_fn(library_errors_as_json))`: the errors the libraries under the
/// handlers answer in their own way get the API's shape, so that every error is JSON. A
/// refused CORS preflight becomes `403 cors_refused`; an error without a body (the docs page's
/// 404 for a file it does not serve) gets one named after its status, its headers kept.
pub async fn library_errors_as_json(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let head = request.method() == Method::HEAD;
    let response = next.call(request).await?;
    let status = response.status();
    let bodiless = matches!(
        response.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    let answer = if let Some(refusal) = response
        .response()
        .error()
        .and_then(|error| error.as_error::<CorsError>())
    {
        ErrorAnswer::new(StatusCode::FORBIDDEN, "cors_refused", refusal).finish()
    } else if (status.is_client_error() || status.is_server_error()) && bodiless && !head {
        let reason = status.canonical_reason().unwrap_or("error");
        let code = reason.to_lowercase().replace([' ', '-'], "_");
        let mut answer = ErrorAnswer::new(status, &code, reason.to_lowercase()).finish();
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                answer.headers_mut().insert(name.clone(), value.clone());
            }
        }
        answer
    } else {
        return Ok(response.map_into_left_body());
    };
    Ok(response.into_response(answer.map_into_right_body()))
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

    #[actix_web::test]
    async fn an_error_a_library_answers_without_a_body_gets_one_and_keeps_its_headers() {
        use actix_web::middleware::from_fn;
        use actix_web::{test, web, App};

        let app = test::init_service(
            App::new()
                .wrap(from_fn(library_errors_as_json))
                .route(
                    "/empty",
                    web::get().to(|| async {
                        HttpResponse::NotFound()
                            .insert_header(("x-kept", "yes"))
                            .finish()
                    }),
                )
                .route(
                    "/answered",
                    web::get().to(|| async { HttpResponse::NotFound().body("its own") }),
                ),
        )
        .await;

        let empty =
            test::call_service(&app, test::TestRequest::get().uri("/empty").to_request()).await;
        assert_eq!(empty.status(), StatusCode::NOT_FOUND);
        assert_eq!(empty.headers().get("x-kept").unwrap(), "yes");
        let body: Value = test::read_body_json(empty).await;
        assert_eq!(body, json!({"error": "not_found", "message": "not found"}));
        let answered =
            test::call_service(&app, test::TestRequest::get().uri("/answered").to_request()).await;
        assert_eq!(test::read_body(answered).await, "its own");
    }

    #[test]
    fn the_log_line_names_every_cause() {
        let error = StoreFailed(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&error), "the store failed: connection refused");
    }
}
