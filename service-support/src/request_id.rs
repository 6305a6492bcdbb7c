//! The request id: taken from `X-Request-Id` when the client sends a usable one, generated
//! otherwise. It is kept in a task-local for the work done on behalf of the request, so that
//! every log line written there carries it (see [`crate::logging`]).

use std::future::Future;

use actix_web::http::header::HeaderMap;
use actix_web::{HttpMessage, HttpRequest};
use uuid::Uuid;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's id when it is 1 to 128 visible ASCII characters, a new UUID otherwise.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let usable = !text.is_empty()
            && text.len() <= MAX_REQUEST_ID_CHARS
            && text.bytes().all(|byte| byte.is_ascii_graphic());
        usable.then(|| Self(text.to_owned()))
    }

    pub fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id [`crate::telemetry::observe`] settled on for `request`; without that
    /// middleware, one made from its headers.
    pub fn of(request: &HttpRequest) -> Self {
        request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| Self::from_headers(request.headers()))
    }

    /// The id of the request whose work is running on this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `work` with this id as the current one, for its log lines.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// Runs `work` with `id` as the current id when there is one (work on an event whose
    /// envelope names its request), as it is otherwise.
    pub async fn scope_if<F: Future>(id: Option<Self>, work: F) -> F::Output {
        match id {
            Some(id) => id.scope(work).await,
            None => work.await,
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept() {
        assert_eq!(RequestId::parse("req-42").unwrap().as_str(), "req-42");
    }

    #[test]
    fn empty_long_or_non_printable_ids_are_replaced() {
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse(&"x".repeat(129)).is_none());
        assert!(RequestId::parse("two words").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
    }

    #[tokio::test]
    async fn the_scoped_id_is_current_inside_and_absent_outside() {
        let id = RequestId::parse("scoped").unwrap();
        let inside = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(inside, Some(id));
        assert_eq!(RequestId::current(), None);
    }
}
