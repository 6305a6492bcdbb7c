//! The committed events' way to the relay: a commit that appends events hands them to the
//! relay of its process, already claimed for it by the statement that appended them, so the
//! relay publishes them at once, without a claim of its own (a statement and a wake-up).
//!
//! The hand-off is an optimisation over the outbox, never a second source of truth: a commit
//! reserves a place in the relay's bounded queue before it starts, and only then appends its
//! rows claimed for `outbox.claim_lease_ms`. Without a place (no relay connected, or the queue
//! full) the rows are appended unclaimed and the relay is told to claim them. A handed-off row
//! that the relay cannot publish before its claim ends is left to whichever relay claims it
//! then, as a row claimed by a relay that crashed is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::OutboxMessage;

/// Commits whose events may wait for the relay at once. Past it the relay is far behind, and
/// commits append unclaimed for it to claim in batches.
pub const WAITING_COMMITS: usize = 1024;

/// The events of one commit, claimed for the relay until `claimed_until` (or later: the
/// database's clock starts the claim when the transaction does, after the reservation).
#[derive(Debug)]
pub struct HandedOff {
    pub messages: Vec<OutboxMessage>,
    pub claimed_until: Instant,
}

/// The store's end. Cheap to clone.
#[derive(Clone)]
pub struct Handoff {
    sender: mpsc::Sender<HandedOff>,
    shared: Arc<Shared>,
    lease: Duration,
}

/// The relay's end.
pub struct HandoffReceiver {
    receiver: mpsc::Receiver<HandedOff>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Whether the relay is publishing (connected to the broker) and takes hand-offs.
    taking: AtomicBool,
    /// Told when a commit appended rows unclaimed.
    claimable: Notify,
}

/// A place in the relay's queue for one commit's events, held while it commits.
pub struct Reservation {
    permit: OwnedPermit<HandedOff>,
    lease: Duration,
    claimed_until: Instant,
}

impl Handoff {
    /// A hand-off to one relay, whose rows are claimed for `lease`, with room for `capacity`
    /// commits' events.
    pub fn new(lease: Duration, capacity: usize) -> (Self, HandoffReceiver) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared::default());
        (
            Self {
                sender,
                shared: shared.clone(),
                lease,
            },
            HandoffReceiver { receiver, shared },
        )
    }

    /// A hand-off to no relay: every row is appended unclaimed, for a relay to claim.
    pub fn detached() -> Self {
        Self::new(Duration::ZERO, 1).0
    }

    /// A place for one commit's events, if the relay takes them and has room.
    pub fn reserve(&self) -> Option<Reservation> {
        if !self.shared.taking.load(Ordering::Acquire) {
            return None;
        }
        let permit = self.sender.clone().try_reserve_owned().ok()?;
        Some(Reservation {
            permit,
            lease: self.lease,
            claimed_until: Instant::now() + self.lease,
        })
    }

    /// Passes on what a commit appended: to the relay when it had a place (`messages` were
    /// claimed for it), else a cue to claim them.
    pub fn committed(&self, reservation: Option<Reservation>, messages: Vec<OutboxMessage>) {
        if messages.is_empty() {
            return;
        }
        match reservation {
            Some(reservation) => {
                reservation.permit.send(HandedOff {
                    messages,
                    claimed_until: reservation.claimed_until,
                });
            }
            None => self.shared.claimable.notify_one(),
        }
    }
}

impl Reservation {
    /// How long the rows of the commit are claimed for the relay.
    pub fn lease(&self) -> Duration {
        self.lease
    }
}

impl HandoffReceiver {
    /// Whether commits may hand their events over: only while the relay publishes.
    pub fn set_taking(&self, taking: bool) {
        self.shared.taking.store(taking, Ordering::Release);
    }

    /// The next commit's events; `None` once every store is gone.
    pub async fn next(&mut self) -> Option<HandedOff> {
        self.receiver.recv().await
    }

    /// A commit's events already waiting, if any.
    pub fn try_next(&mut self) -> Option<HandedOff> {
        self.receiver.try_recv().ok()
    }

    /// Resolves once a commit appended rows unclaimed (or at once if one did since the last
    /// call).
    pub fn claimable(&self) -> impl std::future::Future<Output = ()> + 'static {
        let shared = self.shared.clone();
        async move { shared.claimable.notified().await }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An outbox row with id `id`.
    pub(in crate::outbox) fn message(id: i64) -> OutboxMessage {
        OutboxMessage {
            id,
            event_id: uuid::Uuid::now_v7(),
            aggregate_id: uuid::Uuid::now_v7(),
            event_type: "OnNewOrder".into(),
            routing_key: "order.placed".into(),
            envelope: "{}".into(),
            occurred_at: None,
            correlation_id: None,
            trace_parent: None,
        }
    }

    #[tokio::test]
    async fn nothing_is_reserved_while_the_relay_does_not_take_hand_offs() {
        let (handoff, receiver) = Handoff::new(Duration::from_secs(30), 4);
        assert!(handoff.reserve().is_none());

        receiver.set_taking(true);
        assert!(handoff.reserve().is_some());

        receiver.set_taking(false);
        assert!(handoff.reserve().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_reserves_nothing_and_rows_appended_unclaimed_cue_a_claim() {
        let (handoff, mut receiver) = Handoff::new(Duration::from_secs(30), 1);
        receiver.set_taking(true);
        let first = handoff.reserve();
        assert!(first.is_some());
        assert!(handoff.reserve().is_none(), "the one place is held");

        handoff.committed(None, vec![message(2)]);
        tokio::time::timeout(Duration::from_secs(5), receiver.claimable())
            .await
            .expect("a cue to claim");
        handoff.committed(first, vec![message(1)]);
        let handed_off = receiver.try_next().expect("the reserved commit's events");
        assert_eq!(handed_off.messages[0].id, 1);
        assert!(handed_off.claimed_until > Instant::now() + Duration::from_secs(25));
    }

    #[tokio::test]
    async fn a_reservation_given_back_unused_frees_its_place() {
        let (handoff, mut receiver) = Handoff::new(Duration::from_secs(30), 1);
        receiver.set_taking(true);
        let reservation = handoff.reserve();
        handoff.committed(reservation, Vec::new());

        assert!(receiver.try_next().is_none());
        assert!(handoff.reserve().is_some());
    }
}
