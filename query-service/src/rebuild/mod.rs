//! Rebuilding the read models from the write side's event log, while live events keep flowing.
//!
//! 1. A capture queue is bound to every event first, so that whatever is published from then
//!    on is also seen by the rebuild.
//! 2. The event log is replayed into the next generation's fresh collections. Every event
//!    committed before the replay read it is in the log; every event committed later is
//!    published later, hence captured. The projection is idempotent, so events seen both ways
//!    are harmless. Events of the log from before events carried their list positions and
//!    summary are numbered on the way, in log order ([`numbering`]).
//!    The indexes that only reads use are built after the replay, each in one pass over its
//!    complete collection, rather than grown by every insert of it.
//! 3. The captured events are applied, then the next generation is made active in one
//!    single-document write (see `store::generations`): reads switch from the complete old
//!    models to the complete new ones, never to a half-built one.
//! 4. Replicas notice the switch within `mongodb.generation_refresh_ms`. Until then they may
//!    still apply events to the old generation, so the rebuild keeps applying captured events
//!    to the new one for three refresh intervals.
//! 5. The counts are verified against the events applied, the generation before the retired
//!    one is dropped, and the retired one is kept for a rollback.

mod event_log;
pub mod numbering;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::Channel;
use shared_events::{DecodeError, EventEnvelope, OrderEvent, OrderId};

use crate::broker::{declare_capture_queue, usable_event};
use crate::config::Settings;
use crate::projection::{AppliedVersions, Projector};
use crate::store::{Generation, IndexBuilt, ReadStore, StoreError};
use event_log::EventLogClient;
use numbering::{CancelledBeforePlaced, LogNumbering};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);
const CAPTURE_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("cannot read the event log: {0}")]
    EventLog(#[from] reqwest::Error),
    #[error("the event log answered {status}: {body}")]
    EventLogRefused { status: u16, body: String },
    #[error("event {position} of the log cannot be decoded by this version: {source}")]
    Undecodable {
        position: i64,
        #[source]
        source: DecodeError,
    },
    #[error("event {position} of the log cannot be numbered: {source}")]
    Unnumbered {
        position: i64,
        #[source]
        source: CancelledBeforePlaced,
    },
    #[error("the read database failed: {0}")]
    Store(#[from] StoreError),
    #[error("the broker failed: {0}")]
    Broker(#[from] lapin::Error),
    #[error("generation {0} is no longer the active one: another rebuild switched first")]
    Superseded(Generation),
    #[error("verification failed: {0}")]
    Verification(String),
}

/// A step of a rebuild, for its progress lines.
#[derive(Debug, Clone)]
pub enum Progress {
    /// About once a second during the replay.
    Replaying(Replayed),
    /// After the replay, each index that only reads use, built over its whole collection.
    IndexBuilt(IndexBuilt),
}

/// Where a replay is.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    pub replayed: u64,
    /// The end of the log when the last page was read.
    pub total: u64,
    pub per_second: f64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub generation: Generation,
    pub replayed: u64,
    pub captured: u64,
    pub orders: u64,
    pub customers: u64,
    pub elapsed: Duration,
}

/// What a rebuild would do now, found without writing anything.
#[derive(Debug, Clone)]
pub struct RebuildPlan {
    pub active: Generation,
    /// The position of the newest event in the log: how many events the replay would read.
    pub log_end: i64,
    pub capture_queue: String,
}

/// Reads the active generation and the end of the event log (one page of it, which also
/// proves the log answers with the configured token), and says what a rebuild would do.
pub async fn plan_rebuild(settings: &Settings) -> Result<RebuildPlan, RebuildError> {
    let store = ReadStore::new(&settings.mongodb).await?;
    let active = store.active_generation().await;
    store.shutdown().await;
    let active = active?;
    let log_end = EventLogClient::new(&settings.rebuild)?
        .page_after(0)
        .await?
        .last_position;
    Ok(RebuildPlan {
        active,
        log_end,
        capture_queue: capture_queue_name(&settings.broker.queue, active.next()),
    })
}

impl RebuildPlan {
    /// The generation the rebuild would write.
    pub fn next(&self) -> Generation {
        self.active.next()
    }
}

fn capture_queue_name(queue: &str, generation: Generation) -> String {
    format!("{queue}.rebuild-g{generation}")
}

/// What the applied events say the rebuilt models must contain.
#[derive(Default)]
struct Expected {
    orders: HashSet<OrderId>,
    cancelled: HashSet<OrderId>,
    customers: HashSet<String>,
}

impl Expected {
    fn record(&mut self, envelope: &EventEnvelope) {
        let order_id = envelope.payload.order_id();
        self.orders.insert(order_id);
        self.customers
            .insert(envelope.payload.order().customer.email.clone());
        if let OrderEvent::OrderCancelled(_) = envelope.payload {
            self.cancelled.insert(order_id);
        }
    }
}

/// Rebuilds the read models into the next generation and makes it active.
pub async fn rebuild_read_models(
    settings: &Settings,
    progress: impl FnMut(Progress),
) -> Result<RebuildReport, RebuildError> {
    let live = ReadStore::new(&settings.mongodb).await?;
    let report = rebuild_with(&live, settings, progress).await;
    live.shutdown().await;
    report
}

async fn rebuild_with(
    live: &ReadStore,
    settings: &Settings,
    mut progress: impl FnMut(Progress),
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let current = live.active_generation().await?;
    let next = current.next();
    let target = live.pinned(next);
    target.drop_collections().await?;
    target.ensure_write_indexes().await?;
    // Nobody reads with a consistency token from a generation being rebuilt.
    let projector = Projector::new(
        target.clone(),
        settings.broker.lanes,
        AppliedVersions::new(0),
    );
    let mut expected = Expected::default();

    let connection = settings.broker.url.connect("query-service rebuild").await?;
    let channel = connection.create_channel().await?;
    let capture_queue = capture_queue_name(&settings.broker.queue, next);
    declare_capture_queue(&channel, &capture_queue).await?;
    log::info!("rebuilding generation {next} (active: {current}); capturing live events in {capture_queue}");

    let replayed = replay_log(settings, &projector, &mut expected, &mut progress).await?;
    target
        .ensure_read_indexes(|built| progress(Progress::IndexBuilt(built)))
        .await?;
    let mut captured = apply_captured(&channel, &capture_queue, &projector, &mut expected).await?;

    if !live.activate(current, next).await? {
        return Err(RebuildError::Superseded(current));
    }
    log::info!("generation {next} is active; applying live events until every replica follows");
    let grace_end = Instant::now() + 3 * settings.mongodb.generation_refresh();
    while Instant::now() < grace_end {
        let applied = apply_captured(&channel, &capture_queue, &projector, &mut expected).await?;
        captured += applied;
        if applied == 0 {
            tokio::time::sleep(CAPTURE_POLL).await;
        }
    }
    connection.close(200, "rebuild done".into()).await?;

    let (orders, customers) = verify(&target, &expected).await?;
    if let Some(old) = current.previous() {
        live.pinned(old).drop_collections().await?;
    }
    Ok(RebuildReport {
        generation: next,
        replayed,
        captured,
        orders,
        customers,
        elapsed: started.elapsed(),
    })
}

/// Applies the whole event log, in position order, reporting progress about once a second.
async fn replay_log(
    settings: &Settings,
    projector: &Projector,
    expected: &mut Expected,
    progress: &mut impl FnMut(Progress),
) -> Result<u64, RebuildError> {
    let log = EventLogClient::new(&settings.rebuild)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut position = 0;
    let mut replayed = 0_u64;
    let mut numbering = LogNumbering::default();
    loop {
        let page = log.page_after(position).await?;
        if page.events.is_empty() {
            break;
        }
        let mut events = Vec::with_capacity(page.events.len());
        for logged in page.events {
            let envelope =
                logged
                    .envelope
                    .into_typed()
                    .map_err(|source| RebuildError::Undecodable {
                        position: logged.position,
                        source,
                    })?;
            events.push(
                numbering
                    .number(envelope)
                    .map_err(|source| RebuildError::Unnumbered {
                        position: logged.position,
                        source,
                    })?,
            );
            position = logged.position;
        }
        let applied = projector.apply_batch(&events).await?;
        projector.compact(&applied.compactions).await;
        for event in &events {
            expected.record(&event.envelope);
        }
        replayed += events.len() as u64;
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            progress(Progress::Replaying(Replayed {
                replayed,
                total: u64::try_from(page.last_position).unwrap_or_default(),
                per_second: replayed as f64 / started.elapsed().as_secs_f64(),
            }));
        }
    }
    Ok(replayed)
}

/// Applies what the capture queue holds now; returns how many events that was. A message
/// that is not a usable event is left to the live consumer's dead-letter handling (events are
/// published with their list positions and summary; only the log holds older ones).
async fn apply_captured(
    channel: &Channel,
    queue: &str,
    projector: &Projector,
    expected: &mut Expected,
) -> Result<u64, RebuildError> {
    let mut applied = 0;
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        let delivery = message.delivery;
        if let Ok(event) = usable_event(&delivery.data) {
            let batch = projector.apply_batch(std::slice::from_ref(&event)).await?;
            projector.compact(&batch.compactions).await;
            expected.record(&event.envelope);
            applied += 1;
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(applied)
}

/// Checks the rebuilt models against the events applied: every order and customer is there,
/// and the summaries count at least those orders and cancellations. "At least", because once
/// the new generation is active, live replicas keep adding to it. Returns the order and
/// customer counts.
async fn verify(target: &ReadStore, expected: &Expected) -> Result<(u64, u64), RebuildError> {
    let order_ids = target.order_ids().await?;
    let missing_orders = expected
        .orders
        .iter()
        .filter(|id| !order_ids.contains(&id.to_string()))
        .count();
    let customers = target.all_customers().await?;
    let emails: HashSet<&str> = customers
        .iter()
        .map(|c| c.customer_email.as_str())
        .collect();
    let placed: i64 = customers.iter().map(|c| c.summary.placed_order_count).sum();
    let cancelled: i64 = customers
        .iter()
        .map(|c| c.summary.cancelled_order_count)
        .sum();
    let mut problems = Vec::new();
    if missing_orders > 0 {
        problems.push(format!(
            "{missing_orders} of {} replayed orders are missing",
            expected.orders.len()
        ));
    }
    let missing_customers = expected
        .customers
        .iter()
        .filter(|email| !emails.contains(email.as_str()))
        .count();
    if missing_customers > 0 {
        problems.push(format!("{missing_customers} customers are missing"));
    }
    if placed < expected.orders.len() as i64 || cancelled < expected.cancelled.len() as i64 {
        problems.push(format!(
            "summaries count {placed} orders and {cancelled} cancellations, the events {} and {}",
            expected.orders.len(),
            expected.cancelled.len()
        ));
    }
    if problems.is_empty() {
        Ok((order_ids.len() as u64, customers.len() as u64))
    } else {
        Err(RebuildError::Verification(problems.join("; ")))
    }
}
