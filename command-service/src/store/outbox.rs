use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use service_support::traces::TraceParent;
use service_support::RequestId;
use shared_events::EventEnvelope;
use uuid::Uuid;

use super::statement::{Parameter, Statement};
use super::{corrupt, Store, StoreError};

/// Position of a row in the outbox; increases with every event written.
pub type OutboxMessageId = i64;

/// An event as the relay publishes it: its outbox row and what the message carries.
#[derive(Debug, Clone, QueryableByName)]
pub struct OutboxMessage {
    #[diesel(sql_type = BigInt)]
    pub id: OutboxMessageId,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub aggregate_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub routing_key: String,
    /// The envelope as JSON: the message's body.
    #[diesel(sql_type = Text)]
    pub envelope: String,
    /// When the event occurred (its order was committed), as its envelope says.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// The envelope's `correlationId`: the request that caused the event.
    #[diesel(sql_type = Nullable<Text>)]
    pub correlation_id: Option<String>,
    /// The `traceparent` of the request that caused the event, if it came in a trace.
    #[diesel(sql_type = Nullable<Text>)]
    pub trace_parent: Option<String>,
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
    /// The request that caused the event, as its envelope names it.
    pub fn request_id(&self) -> Option<RequestId> {
        self.correlation_id.as_deref().and_then(RequestId::parse)
    }
}

/// The text that appends the events of [`OutboxRows::parameters`], at the end of a
/// statement, claimed for the relay for the milliseconds of its last parameter (unclaimed when
/// it is NULL), and returns each row's id ([`Appended`]): every event is appended through it, a
/// group's placements inside the group's statement, a cancellation on its own.
macro_rules! insert_outbox_rows {
    () => {
        "INSERT INTO outbox (event_id, aggregate_id, event_type, routing_key, envelope, \
                             trace_parent, claimed_until, publish_attempts) \
         SELECT event_id, aggregate_id, event_type, routing_key, envelope::jsonb, trace_parent, \
                claim.until, (claim.until IS NOT NULL)::int \
           FROM unnest(?, ?, ?, ?, ?, ?) \
             AS event (event_id, aggregate_id, event_type, routing_key, envelope, trace_parent), \
                (SELECT now() + ? * interval '1 millisecond' AS until) AS claim \
         RETURNING id, event_id"
    };
}
pub(super) use insert_outbox_rows;

/// A row [`insert_outbox_rows`] appended.
#[derive(QueryableByName)]
pub(super) struct Appended {
    #[diesel(sql_type = BigInt)]
    id: OutboxMessageId,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
}

/// The outbox rows of some events, and how long they are claimed for the relay as they are
/// appended.
pub(super) struct OutboxRows {
    rows: Vec<OutboxRow>,
    claimed_for: Option<Duration>,
}

/// One event's row, with what its message carries besides.
struct OutboxRow {
    event_id: Uuid,
    aggregate_id: Uuid,
    event_type: String,
    routing_key: String,
    envelope: String,
    occurred_at: DateTime<Utc>,
    correlation_id: String,
    trace_parent: Option<String>,
}

impl OutboxRows {
    /// The rows of `events`, each with the `traceparent` of the request that caused it (at its
    /// place in `trace_parents`; none past their end), claimed for the relay for
    /// `claimed_for`, if given.
    pub(super) fn of<'a>(
        events: &[EventEnvelope],
        trace_parents: impl IntoIterator<Item = Option<&'a TraceParent>>,
        claimed_for: Option<Duration>,
    ) -> Result<Self, StoreError> {
        let mut trace_parents = trace_parents.into_iter();
        let rows = events
            .iter()
            .map(|event| {
                let trace_parent = trace_parents.next().flatten();
                Ok(OutboxRow {
                    event_id: event.event_id.as_uuid(),
                    aggregate_id: event.aggregate_id.as_uuid(),
                    event_type: event.event_type.clone(),
                    routing_key: event.routing_key(),
                    envelope: serde_json::to_string(event).map_err(serialization)?,
                    occurred_at: event.occurred_at,
                    correlation_id: event.correlation_id.clone(),
                    trace_parent: trace_parent.map(|parent| parent.as_str().to_owned()),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { rows, claimed_for })
    }

    /// The parameters of [`insert_outbox_rows`], in its order.
    pub(super) fn parameters(&self) -> [Parameter<'_>; 7] {
        let rows = &self.rows;
        [
            Parameter::Uuids(rows.iter().map(|row| row.event_id).collect()),
            Parameter::Uuids(rows.iter().map(|row| row.aggregate_id).collect()),
            Parameter::Texts(rows.iter().map(|row| row.event_type.as_str()).collect()),
            Parameter::Texts(rows.iter().map(|row| row.routing_key.as_str()).collect()),
            Parameter::Texts(rows.iter().map(|row| row.envelope.as_str()).collect()),
            Parameter::OptionalTexts(rows.iter().map(|row| row.trace_parent.as_deref()).collect()),
            Parameter::OptionalBigInt(self.claimed_for.map(millis)),
        ]
    }

    /// The rows as the relay publishes them, given what [`insert_outbox_rows`] returned for
    /// them; none when they were appended unclaimed, for no relay takes those from the
    /// commit.
    pub(super) fn into_messages(
        self,
        appended: Vec<Appended>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        if self.claimed_for.is_none() {
            return Ok(Vec::new());
        }
        let ids: HashMap<Uuid, OutboxMessageId> = appended
            .into_iter()
            .map(|row| (row.event_id, row.id))
            .collect();
        self.rows
            .into_iter()
            .map(|row| {
                let event_id = row.event_id;
                let id = *ids.get(&event_id).ok_or_else(|| {
                    corrupt(format!("event {event_id} was not appended to the outbox"))
                })?;
                Ok(OutboxMessage {
                    id,
                    event_id: row.event_id,
                    aggregate_id: row.aggregate_id,
                    event_type: row.event_type,
                    routing_key: row.routing_key,
                    envelope: row.envelope,
                    occurred_at: Some(row.occurred_at),
                    correlation_id: Some(row.correlation_id),
                    trace_parent: row.trace_parent,
                })
            })
            .collect()
    }
}

fn serialization(error: serde_json::Error) -> StoreError {
    StoreError::Query(diesel::result::Error::SerializationError(error.into()))
}

/// Appends `event` to the outbox on `conn`, inside the caller's transaction, claimed for the
/// relay for `claimed_for`, if given; the row as the relay publishes it, if claimed.
pub(super) fn append(
    conn: &mut PgConnection,
    event: &EventEnvelope,
    trace_parent: Option<&TraceParent>,
    claimed_for: Option<Duration>,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let rows = OutboxRows::of(std::slice::from_ref(event), [trace_parent], claimed_for)?;
    let appended = Statement::new(insert_outbox_rows!(), rows.parameters().into()).load(conn)?;
    rows.into_messages(appended)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

// Claims and marks commit without waiting for the WAL flush (`synchronous_commit` off for
// their transaction alone): one lost in a crash of PostgreSQL only has a row published again,
// which delivery at least once allows, and the relay does not wait for a flush per batch.

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
              RETURNING outbox.id, event_id, aggregate_id, event_type, routing_key,
                        envelope::text AS envelope,
                        (envelope->>'occurredAt')::timestamptz AS occurred_at,
                        envelope->>'correlationId' AS correlation_id, trace_parent",
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

    /// Hands rows back for another attempt after `delay`, each with why this one failed.
    pub async fn release_for_retry(
        &self,
        failed: Vec<(OutboxMessageId, String)>,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let (ids, errors): (Vec<OutboxMessageId>, Vec<String>) = failed.into_iter().unzip();
        self.run(move |conn| {
            diesel::sql_query(
                "UPDATE outbox
                    SET claimed_until = now() + $2 * interval '1 millisecond',
                        last_error = failed.error
                   FROM unnest($1, $3) AS failed (id, error)
                  WHERE outbox.id = failed.id",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<BigInt, _>(millis(delay))
            .bind::<Array<Text>, _>(errors)
            .execute(conn)?;
            Ok(())
        })
        .await
    }
}
