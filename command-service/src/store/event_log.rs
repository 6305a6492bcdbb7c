use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb};
use serde::Serialize;

use super::{Store, StoreError};

/// One event of the write side's event log: an outbox row, published or not, with its
/// position.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct LoggedEvent {
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = Jsonb)]
    pub envelope: serde_json::Value,
}

/// A page of the event log and the log's last position when it was read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLogPage {
    pub events: Vec<LoggedEvent>,
    pub last_position: i64,
}

#[derive(QueryableByName)]
struct LastPosition {
    #[diesel(sql_type = BigInt)]
    last: i64,
}

impl Store {
    /// Up to `limit` events after position `after`, in position order.
    pub async fn event_log_page(&self, after: i64, limit: u32) -> Result<EventLogPage, StoreError> {
        self.run(move |conn| {
            let events = diesel::sql_query(
                "SELECT id AS position, envelope FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind::<BigInt, _>(after)
            .bind::<BigInt, _>(i64::from(limit))
            .load(conn)?;
            let last_position =
                diesel::sql_query("SELECT coalesce(max(id), 0) AS last FROM outbox")
                    .get_result::<LastPosition>(conn)?
                    .last;
            Ok(EventLogPage {
                events,
                last_position,
            })
        })
        .await
    }
}
