use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Jsonb, Text, Uuid as SqlUuid};
use service_support::RequestId;
use shared_events::EventEnvelope;
use uuid::Uuid;

use super::schema::outbox;
use super::{Store, StoreError};

/// Position of a row in the outbox; increases with every event written.
pub type OutboxMessageId = i64;

/// A pending event claimed by a relay for publishing.
#[derive(Debug, Clone, QueryableByName)]
pub struct OutboxMessage {
    #[diesel(sql_type = BigInt)]
    pub id: OutboxMessageId,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub routing_key: String,
    #[diesel(sql_type = Jsonb)]
    pub envelope: serde_json::Value,
}

/// The events waiting for the broker.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct OutboxBacklog {
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    #[diesel(sql_type = Double)]
    pub oldest_age_seconds: f64,
}

impl OutboxMessage {
    /// When the event occurred (its order was committed), as its envelope says.
    pub fn occurred_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.envelope["occurredAt"]
            .as_str()
            .and_then(|text| text.parse().ok())
    }

    /// The request that caused the event, as its envelope names it.
    pub fn request_id(&self) -> Option<RequestId> {
        self.envelope["correlationId"]
            .as_str()
            .and_then(RequestId::parse)
    }
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    event_id: Uuid,
    aggregate_id: Uuid,
    event_type: &'a str,
    routing_key: &'a str,
    envelope: serde_json::Value,
}

/// Writes `event` to the outbox on `conn`, inside the caller's transaction.
pub(super) fn append(conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), StoreError> {
    let envelope = serde_json::to_value(event).map_err(|error| {
        StoreError::Query(diesel::result::Error::SerializationError(error.into()))
    })?;
    diesel::insert_into(outbox::table)
        .values(NewOutboxRow {
            event_id: event.event_id.as_uuid(),
            aggregate_id: event.aggregate_id.as_uuid(),
            event_type: &event.event_type,
            routing_key: &event.routing_key(),
            envelope,
        })
        .execute(conn)?;
    Ok(())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

// Claims and marks commit without waiting for the WAL flush (`synchronous_commit` off for
// their transaction alone): one lost in a crash of PostgreSQL only has a row published again,
// which delivery at least once allows, and the relay no longer waits for a flush per batch.

impl Store {
    /// Claims up to `limit` unpublished rows, oldest first, for `lease`. Rows another relay
    /// holds are skipped (`SKIP LOCKED` while claiming, the lease afterwards), so replicas
    /// share the backlog instead of publishing the same rows.
    pub async fn claim_outbox_batch(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.run(move |conn| {
            let mut claimed: Vec<OutboxMessage> = diesel::sql_query(
                "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
                 UPDATE outbox
                    SET claimed_until = now() + $2 * interval '1 millisecond',
                        publish_attempts = publish_attempts + 1
                   FROM relaxed
                  WHERE id IN (SELECT id FROM outbox
                                WHERE published_at IS NULL
                                  AND (claimed_until IS NULL OR claimed_until < now())
                                ORDER BY id
                                LIMIT $1
                                FOR UPDATE SKIP LOCKED)
              RETURNING outbox.id, event_id, event_type, routing_key, envelope",
            )
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<BigInt, _>(millis(lease))
            .load(conn)?;
            claimed.sort_by_key(|message| message.id);
            Ok(claimed)
        })
        .await
    }

    /// How many events wait for the broker, and for how long the oldest has.
    pub async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        self.run(|conn| {
            Ok(diesel::sql_query(
                "SELECT count(*) AS pending,
                        COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                            AS oldest_age_seconds
                   FROM outbox
                  WHERE published_at IS NULL",
            )
            .get_result(conn)?)
        })
        .await
    }

    /// Marks rows as published; called only after the broker confirmed them.
    pub async fn mark_published(&self, ids: Vec<OutboxMessageId>) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::sql_query(
                "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
                 UPDATE outbox
                    SET published_at = now(), claimed_until = NULL, last_error = NULL
                   FROM relaxed
                  WHERE id = ANY($1)",
            )
            .bind::<Array<BigInt>, _>(ids)
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Hands a row back for another attempt after `delay`, recording why this one failed.
    pub async fn release_for_retry(
        &self,
        id: OutboxMessageId,
        error: String,
        delay: Duration,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::sql_query(
                "UPDATE outbox
                    SET claimed_until = now() + $2 * interval '1 millisecond', last_error = $3
                  WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(millis(delay))
            .bind::<Text, _>(error)
            .execute(conn)?;
            Ok(())
        })
        .await
    }
}
