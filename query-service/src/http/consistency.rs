//! Read-your-writes. A command's response carries a consistency token (the order and the
//! version the command produced); a read that presents it, in the `X-Consistency-Token`
//! header or the `consistencyToken` query parameter, first waits until the read model holds
//! that order at that version or later. The wait is bounded (`consistency.max_wait_ms`); past
//! it the read answers 503 `not_yet_consistent` rather than stale data. Reads without a token
//! do not wait at all. A waiting read is woken by this replica's projection when a batch
//! writes its version, and polls the store meanwhile for a version another replica writes; at
//! most `consistency.max_waiting_reads` wait at once on a replica, past that a read with a
//! token answers 503 `too_many_waiting` at once.
//!
//! Checking the order document is enough for every read, because the projection writes the
//! order last (see `projection`), and its document carries its customer's summary as of that
//! version, which a read of the customer counts (`ConsistentRead::awaited_order`).

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use service_support::docs::{parameter, string_schema};
use service_support::traces;
use shared_events::{ConsistencyToken, CONSISTENCY_TOKEN_HEADER};
use tokio::time::Instant;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use super::ApiError;
use crate::projection::AppliedVersions;
use crate::store::ReadStore;

/// The fallback poll, for a version another replica applies.
const FIRST_POLL: Duration = Duration::from_millis(10);
const LONGEST_POLL: Duration = Duration::from_millis(50);
/// How far a token's order may be placed before now, beyond the wait itself, and still be
/// waited for when the read model does not know it: a projection further behind answers 503
/// either way.
const UNKNOWN_ORDER_WINDOW: Duration = Duration::from_secs(60);
/// How many versions past the stored one a token may name and still be waited for: each
/// command raises an order's version by one, and a client holds the token of its last one.
const MAX_VERSIONS_AHEAD: i64 = 8;

/// Whether waiting for `token` can end well, given the order's version in the read model: a
/// token no command could have issued lately (an order unknown and not placed within the
/// window, as for a made-up id; a version far beyond the stored one) is answered at once.
fn worth_waiting_for(
    token: &ConsistencyToken,
    stored: Option<i64>,
    now: std::time::SystemTime,
    max_wait: Duration,
) -> bool {
    let wanted = i64::try_from(token.version).unwrap_or(i64::MAX);
    match stored {
        Some(version) => wanted - version <= MAX_VERSIONS_AHEAD,
        None => {
            let placed_at = token.order_id.as_uuid().get_timestamp().map(|time| {
                let (seconds, nanos) = time.to_unix();
                std::time::UNIX_EPOCH + Duration::new(seconds, nanos)
            });
            placed_at.is_some_and(|placed_at| {
                let window = UNKNOWN_ORDER_WINDOW + max_wait;
                placed_at <= now + window
                    && now.duration_since(placed_at).unwrap_or_default() <= window
                    && wanted <= MAX_VERSIONS_AHEAD
            })
        }
    }
}

/// How long a read with a consistency token may wait for the read model.
#[derive(Debug, Clone, Copy)]
pub struct MaxConsistencyWait(pub Duration);

/// Extracting it performs the wait; a handler that takes one reads only after the token's
/// point, if the request named one.
pub struct ConsistentRead {
    awaited: Option<String>,
}

impl ConsistentRead {
    /// The id of the token's order, which the read model now holds at the token's version or
    /// later: a read of its customer's summary counts it whatever else is applied yet.
    pub fn awaited_order(&self) -> Option<&str> {
        self.awaited.as_deref()
    }
}

/// How a client reads its own write, in the OpenAPI document of every read.
pub const READ_YOUR_WRITES: &str = "**Reading your own write.** A command answers a \
    `consistencyToken` (also in its `X-Consistency-Token` header). Send it with this read, as \
    the `consistencyToken` parameter or the `X-Consistency-Token` header, and the read first \
    waits until the read model holds that version of the order, at most \
    `consistency.max_wait_ms` (2 s by default), else answers 503 `not_yet_consistent`. Without \
    a token the read answers at once, from what is projected so far.";

/// The `consistencyToken` query parameter; the `X-Consistency-Token` header does the same.
#[derive(Deserialize)]
pub struct TokenParameter {
    #[serde(rename = "consistencyToken")]
    token: Option<String>,
}

impl IntoParams for TokenParameter {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "consistencyToken",
            ParameterIn::Query,
            "A command's consistency token (`<order id>.<version>`): the read first waits until \
             the read model holds it, at most `consistency.max_wait_ms`, else answers 503.",
            string_schema(ConsistencyToken::PATTERN.to_owned(), None),
        )]
    }
}

/// The token of the header, else of the query parameter; a malformed one is reported against
/// whichever carried it.
fn requested_token(request: &HttpRequest) -> Result<Option<ConsistencyToken>, ApiError> {
    if let Some(value) = request.headers().get(CONSISTENCY_TOKEN_HEADER) {
        let text = value.to_str().unwrap_or_default();
        return text
            .trim()
            .parse()
            .map(Some)
            .map_err(|error| ApiError::InvalidHeader {
                name: "X-Consistency-Token",
                message: format!("{error}; got {text:?}"),
            });
    }
    // The query is read whole, unknown parameters ignored: it fails only on a token given
    // twice (the other parameters are each handler's to check).
    web::Query::<TokenParameter>::from_query(request.query_string())
        .map_err(|_| ApiError::InvalidParameter {
            name: "consistencyToken",
            message: "must be given once".to_owned(),
        })?
        .into_inner()
        .token
        .map(|text| {
            text.parse().map_err(|error| ApiError::InvalidParameter {
                name: "consistencyToken",
                message: format!("{error}; got {text:?}"),
            })
        })
        .transpose()
}

/// Waits until the read model holds `token`: woken by this replica's projection when one of
/// its batches writes the version, or found by a poll that backs off (another replica may
/// apply it).
async fn wait_for(
    store: &ReadStore,
    applied: &AppliedVersions,
    token: ConsistencyToken,
    max_wait: Duration,
) -> Result<(), ApiError> {
    let deadline = Instant::now() + max_wait;
    let order_id = token.order_id.to_string();
    let wanted = i64::try_from(token.version).unwrap_or(i64::MAX);
    let mut awaited = applied.wait_for(&order_id, wanted)?;
    let stored = store.order_version(&order_id).await?;
    if stored.is_some_and(|version| version >= wanted) {
        return Ok(());
    }
    if !worth_waiting_for(&token, stored, std::time::SystemTime::now(), max_wait) {
        return Err(ApiError::NotYetConsistent {
            token,
            waited: Duration::ZERO,
        });
    }
    let mut pause = FIRST_POLL;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::NotYetConsistent {
                token,
                waited: max_wait,
            });
        }
        tokio::select! {
            () = awaited.applied() => return Ok(()),
            () = tokio::time::sleep(pause.min(deadline - now)) => {}
        }
        let stored = store.order_version(&order_id).await?;
        if stored.is_some_and(|version| version >= wanted) {
            return Ok(());
        }
        pause = (pause * 2).min(LONGEST_POLL);
    }
}

impl FromRequest for ConsistentRead {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let token = requested_token(request);
        let store = request.app_data::<web::Data<ReadStore>>().cloned();
        let applied = request.app_data::<AppliedVersions>().cloned();
        let max_wait = request
            .app_data::<MaxConsistencyWait>()
            .map_or(Duration::ZERO, |wait| wait.0);
        Box::pin(async move {
            let mut awaited = None;
            if let (Some(token), Some(store), Some(applied)) = (token?, store, applied) {
                awaited = Some(token.order_id.to_string());
                traces::in_span(
                    "consistency wait",
                    wait_for(&store, &applied, token, max_wait),
                )
                .await?;
            }
            Ok(Self { awaited })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use shared_events::{ConsistencyToken, OrderId};
    use uuid::Uuid;

    use super::worth_waiting_for;

    const WAIT: Duration = Duration::from_secs(2);

    fn token(uuid: Uuid, version: u64) -> ConsistencyToken {
        ConsistencyToken {
            order_id: OrderId::from_uuid(uuid),
            version,
        }
    }

    #[test]
    fn a_recent_order_is_waited_for_a_made_up_or_stale_one_is_not() {
        let now = SystemTime::now();
        assert!(worth_waiting_for(
            &token(Uuid::now_v7(), 1),
            None,
            now,
            WAIT
        ));
        assert!(!worth_waiting_for(
            &token(Uuid::new_v4(), 1),
            None,
            now,
            WAIT
        ));
        let an_hour_later = now + Duration::from_secs(3600);
        assert!(!worth_waiting_for(
            &token(Uuid::now_v7(), 1),
            None,
            an_hour_later,
            WAIT
        ));
        let an_hour_earlier = now - Duration::from_secs(3600);
        assert!(!worth_waiting_for(
            &token(Uuid::now_v7(), 1),
            None,
            an_hour_earlier,
            WAIT
        ));
    }

    #[test]
    fn a_version_far_beyond_the_stored_one_is_not_waited_for() {
        let now = SystemTime::now();
        let id = Uuid::now_v7();
        assert!(worth_waiting_for(&token(id, 2), Some(1), now, WAIT));
        assert!(!worth_waiting_for(&token(id, u64::MAX), Some(1), now, WAIT));
        assert!(!worth_waiting_for(&token(id, u64::MAX), None, now, WAIT));
    }
}
