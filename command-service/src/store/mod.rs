//! PostgreSQL through diesel. Diesel's connections are synchronous, so every query runs on
//! tokio's blocking pool ([`Store::run`]) with a connection from an r2d2 pool: the async
//! runtime never waits on the database, and the pool size bounds the blocking threads in use.

mod event_log;
mod orders;
mod outbox;
mod placements;
mod statement;
#[rustfmt::skip]
mod schema;

use std::sync::Arc;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;
use crate::outbox::Handoff;

pub use event_log::{EventLogPage, LoggedEvent};
pub use orders::CancelOrderError;
pub use outbox::{OutboxBacklog, OutboxMessage, OutboxMessageId};
pub use placements::{GroupOutcomes, OrderPlacement, PlaceOrderError, Placement};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

type PgPool = Pool<ConnectionManager<PgConnection>>;

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database connection could be obtained")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    #[error("the database connection was lost")]
    ConnectionLost(#[source] DieselError),
    /// The connection was lost while COMMIT was on its way: PostgreSQL may have committed the
    /// transaction before it went (a primary killed after its standby had the commit, say).
    #[error("the database connection was lost during the commit, which may have happened")]
    CommitOutcomeUnknown(#[source] DieselError),
    #[error("a database query failed")]
    Query(#[source] DieselError),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("the database task was cancelled")]
    TaskCancelled(#[from] tokio::task::JoinError),
    /// The failure of a group commit, shared by every command of the group.
    #[error(transparent)]
    Group(Arc<StoreError>),
    #[error("the service is stopping")]
    Stopping,
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Self::ConnectionLost(error),
            error => Self::Query(error),
        }
    }
}

impl StoreError {
    fn from_commit(error: DieselError) -> Self {
        let connection_lost = |error: &DieselError| {
            matches!(
                error,
                DieselError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _,
                )
            )
        };
        match &error {
            DieselError::RollbackErrorOnCommit { commit_error, .. }
                if connection_lost(commit_error) =>
            {
                Self::CommitOutcomeUnknown(error)
            }
            lost if connection_lost(lost) => Self::CommitOutcomeUnknown(error),
            _ => error.into(),
        }
    }

    /// True when the command may or may not have been committed.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Self::CommitOutcomeUnknown(_) => true,
            Self::Group(error) => error.is_outcome_unknown(),
            _ => false,
        }
    }

    /// True when the database could not be reached, as opposed to a query it refused.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::ConnectionLost(_) | Self::Stopping => true,
            Self::Group(error) => error.is_unavailable(),
            _ => false,
        }
    }

    /// True when PostgreSQL refused the data itself (a unique, foreign-key, not-null or check
    /// constraint): the same statement without the offending row would have succeeded.
    pub fn is_constraint_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation
                    | DatabaseErrorKind::ForeignKeyViolation
                    | DatabaseErrorKind::NotNullViolation
                    | DatabaseErrorKind::CheckViolation
                    | DatabaseErrorKind::ExclusionViolation
                    | DatabaseErrorKind::RestrictViolation,
                _,
            ))
        )
    }
}

/// An error for data the database holds that breaks the write model's rules.
fn corrupt(what: String) -> StoreError {
    StoreError::Query(DieselError::DeserializationError(what.into()))
}

/// A count, position or version the database holds, as the unsigned number it is meant to
/// be; a negative one is corruption, named by `what` (never by a customer's email: it goes to
/// the log).
fn unsigned(value: i64, what: impl FnOnce() -> String) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{} is {value}", what())))
}

/// Runs `work` in a transaction, committed when it succeeds and rolled back when it fails. Unlike
/// diesel's `transaction`, a commit lost with its connection is told apart
/// ([`StoreError::CommitOutcomeUnknown`]) from a failure that left nothing committed.
fn in_transaction<T, E>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    AnsiTransactionManager::begin_transaction(conn).map_err(StoreError::from)?;
    match work(conn) {
        Ok(value) => AnsiTransactionManager::commit_transaction(conn)
            .map(|()| value)
            .map_err(|error| StoreError::from_commit(error).into()),
        Err(error) => {
            // Nothing was committed either way; a connection that cannot roll back is marked
            // broken and the pool drops it.
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(conn) {
                log::warn!("a failed transaction could not be rolled back: {rollback}");
            }
            Err(error)
        }
    }
}

/// Caps every statement so a stuck database turns into an error rather than a hung request.
#[derive(Debug)]
struct StatementTimeout(u64);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for StatementTimeout {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!("SET statement_timeout = {}", self.0))
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Handle to the write model; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// Where each commit that appended events passes them on to the relay.
    handoff: Handoff,
}

impl Store {
    /// Creates the pool without connecting: the first query connects. Events are appended
    /// unclaimed, for a relay to claim, unless [`Store::handing_off_to`] names its relay.
    pub fn new(settings: &DatabaseSettings) -> Self {
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(settings.acquire_timeout())
            .connection_customizer(Box::new(StatementTimeout(settings.statement_timeout_ms)))
            .build_unchecked(ConnectionManager::new(settings.url.expose_secret()));
        Self {
            pool,
            handoff: Handoff::detached(),
        }
    }

    /// The same store, handing the events it commits to the relay at the other end of
    /// `handoff`.
    pub fn handing_off_to(self, handoff: Handoff) -> Self {
        Self { handoff, ..self }
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut PooledConnection<ConnectionManager<PgConnection>>) -> Result<T, E>
            + Send
            + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || work(&mut pool.get().map_err(StoreError::from)?))
            .await
            .map_err(StoreError::from)?
    }

    /// Runs the migrations the database lacks; the versions it ran, oldest first.
    pub async fn run_migrations(&self) -> Result<Vec<String>, StoreError> {
        self.run(|conn| {
            conn.run_pending_migrations(MIGRATIONS)
                .map(|applied| applied.iter().map(ToString::to_string).collect())
                .map_err(|error| StoreError::Migration(error.to_string()))
        })
        .await
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}
