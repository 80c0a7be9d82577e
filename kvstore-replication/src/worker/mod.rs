//! One worker thread per replica: moves records from the live queue, the WAL or a snapshot to
//! the transport, following [`crate::plan::next_step`], and books acks, failures and health.

mod cursor;
mod session;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kvstore_core::{KvStore, Lsn};

use crate::config::ReplicationMode;
use crate::error::Error;
use crate::health::{HealthEvent, ReplicaState};
use crate::protocol::SharedRecord;
use crate::queue::{Backlog, Chunk};
use crate::shared::{deadline_after, ReplicaShared, Shared};
use crate::transport::BoxedTransport;
use cursor::{SnapshotCursor, WalCursor};

/// What an async worker does with live records at the head of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Send them now.
    SendNow,
    /// Read acks first: sending a few records now would cost the replica a commit group for
    /// them alone, while acks still to come free room for a larger window.
    AwaitAcksFirst,
    /// Nothing is in flight and the window is not full: let more records arrive (up to the
    /// batch delay), then send.
    Linger,
}

/// Decides how a worker sends `ready` live records when `room` more fit in its window of
/// `window` with `in_flight` unacknowledged. Sync modes (`batching` false) always send at once,
/// since writers wait for the acks.
fn fill(batching: bool, ready: usize, room: usize, in_flight: usize, window: usize) -> Fill {
    if !batching {
        return Fill::SendNow;
    }
    if room_is_small(in_flight, room, window) || (in_flight > 0 && ready < room) {
        return Fill::AwaitAcksFirst;
    }
    if ready < room {
        return Fill::Linger;
    }
    Fill::SendNow
}

/// Whether the window has so little room left that sending into it would make a tiny batch
/// (one commit group on the replica for a record or two) while acks that free more room are
/// on their way. Without this, a full window refills one record per ack.
fn room_is_small(in_flight: usize, room: usize, window: usize) -> bool {
    in_flight > 0 && room < window.div_ceil(2)
}

/// What the WAL consumer names of replicas start with.
const CONSUMER_PREFIX: &str = "replica:";

/// Name under which a replica pins the master's WAL (`retain_wal`).
pub(crate) fn wal_consumer_name(replica: &str) -> String {
    format!("{CONSUMER_PREFIX}{replica}")
}

/// Whether a WAL consumer is a replica's (see [`wal_consumer_name`]).
pub(crate) fn is_replica_consumer(consumer: &str) -> bool {
    consumer.starts_with(CONSUMER_PREFIX)
}

/// The replica's position within an open session.
#[derive(Debug, Clone, Copy)]
struct Session {
    acked: Lsn,
    sent: Lsn,
    in_flight: usize,
    gap_seen: bool,
    /// Last LSN registered with `retain_wal`.
    retained: Lsn,
}

pub(crate) struct Worker {
    idx: usize,
    shared: Arc<Shared>,
    store: KvStore,
    transport: BoxedTransport,
    shutdown: Receiver<()>,
    consumer: String,
    queue: VecDeque<SharedRecord>,
    /// Chunks trimmed from the backlog, dropped here rather than under its lock.
    spent: Vec<Chunk>,
    /// Acks taken from the transport in one go (kept to reuse its allocation).
    acks: Vec<crate::protocol::Ack>,
    session: Option<Session>,
    wal: Option<WalCursor>,
    snapshot: Option<SnapshotCursor>,
    /// Start a full resync before anything else (forced, or resuming one).
    resync_now: bool,
    /// An operator forced a resync that has not completed yet: every HELLO is forced until the
    /// snapshot is installed (a transient failure on the way must not drop the request, or the
    /// replica would be refused as diverged again), and cleared by a refusal.
    forcing: bool,
    /// Failures since the replica last made progress, for the backoff.
    attempt: u32,
    /// A session opened since the last failure, but the replica has taken nothing on it yet:
    /// its first progress (an ack that moves forward, a snapshot chunk taken, or nothing left
    /// to send) clears the failures and the backoff. A HELLO alone does not, or a replica
    /// that fails every send would be retried at full speed and reported healthy for ever.
    unproven: bool,
    /// The most snapshot chunks any attempt has had taken since the last install finished.
    /// A chunk counts as progress only past it: a replica that fails every install at the
    /// same chunk (a value over its limit) restarts at chunk 0 each time, and counting those
    /// chunks would reset its failures and backoff for ever.
    snapshot_furthest: u64,
    /// Set once the replicator is closing: the worker stops by then.
    deadline: Option<Instant>,
    /// The id of a replica this worker found connected under another name. While it is (see
    /// `SAME_REPLICA_GRACE`), this worker says no HELLO: the replica would accept it and so
    /// end the other's session.
    same_replica_as: Option<u64>,
}

impl Worker {
    pub fn new(
        idx: usize,
        shared: Arc<Shared>,
        store: KvStore,
        transport: BoxedTransport,
        shutdown: Receiver<()>,
    ) -> Self {
        let consumer = wal_consumer_name(&shared.replicas[idx].name);
        Worker {
            idx,
            shared,
            store,
            transport,
            shutdown,
            consumer,
            queue: VecDeque::new(),
            spent: Vec::new(),
            acks: Vec::new(),
            session: None,
            wal: None,
            snapshot: None,
            resync_now: false,
            forcing: false,
            attempt: 0,
            unproven: false,
            snapshot_furthest: 0,
            deadline: None,
            same_replica_as: None,
        }
    }

    fn replica(&self) -> &ReplicaShared {
        &self.shared.replicas[self.idx]
    }

    /// Runs the worker; a panic marks the replica unhealthy and restarts the loop with a fresh
    /// session, so a replica is never silently abandoned.
    pub fn run_supervised(mut self) {
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.run())) {
                Ok(()) => break,
                Err(_) => {
                    tracing::error!(replica = %self.replica().name, "replication worker panicked; restarting it");
                    *self.replica().last_error.lock() = Some("worker panicked".into());
                    self.replica().set_state(ReplicaState::Unhealthy);
                    self.shared.acks.disconnect(self.idx, false);
                    self.session = None;
                    self.wal = None;
                    self.snapshot = None;
                    if self.shared.is_closing() {
                        break;
                    }
                    self.pause(self.shared.settings.probe_interval);
                }
            }
        }
        self.transport.close();
    }

    fn run(&mut self) {
        loop {
            if self.should_stop() {
                return;
            }
            if self.session.is_none() && !self.open_session() {
                if self.shared.is_closing() {
                    return;
                }
                continue;
            }
            if self.resync_now {
                self.full_resync();
                continue;
            }
            if !self.step() {
                return;
            }
        }
    }

    /// Whether the replicator is closing and the worker's time is up.
    fn should_stop(&mut self) -> bool {
        if !self.shared.is_closing() {
            return false;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| deadline_after(self.shared.settings.shutdown_timeout));
        Instant::now() >= deadline
    }

    /// Sleeps up to `d`, waking early when the replicator closes.
    fn pause(&self, d: Duration) {
        if self.shared.is_closing() {
            return;
        }
        let _ = self.shutdown.recv_timeout(d);
    }

    /// Books a failed call: counters, health, backoff; ends the session.
    fn fail(&mut self, error: Error) {
        let refused = matches!(error, Error::StaleEpoch { .. } | Error::Diverged { .. });
        if refused && self.replica().state() == ReplicaState::Diverged {
            // A diverged replica refusing its periodic probe again: the first refusal warned.
            tracing::debug!(replica = %self.replica().name, %error, "still refused");
        } else {
            tracing::warn!(replica = %self.replica().name, %error, "replication call failed");
        }
        *self.replica().last_error.lock() = Some(error.to_string());
        self.session = None;
        self.wal = None;
        self.transport.close();
        self.shared.acks.disconnect(self.idx, refused);
        if refused {
            // A replica that refuses even a forced session (a stale epoch) waits for the
            // operator again instead of being retried in a loop.
            self.forcing = false;
            self.shared.health_event(self.idx, HealthEvent::Refused);
            return;
        }
        ReplicaShared::bump(&self.replica().sends_failed);
        self.shared.health_event(self.idx, HealthEvent::Failure);
        self.attempt = self.attempt.saturating_add(1);
        let delay = self
            .shared
            .settings
            .backoff
            .delay(self.attempt, rand::random::<f64>());
        self.pause(delay);
    }

    fn backlog(&self) -> &Backlog {
        &self.shared.backlog
    }

    /// Moves the live queue's next records into the local buffer, up to two windows.
    fn pull_queue(&mut self) {
        let limit = self.shared.settings.window_records * 2;
        let room = limit.saturating_sub(self.queue.len());
        if room > 0 {
            let shared = &self.shared;
            // A skipped replica neither gets records nor keeps them queued for itself.
            let is_live = |i: usize| shared.replicas.get(i).is_some_and(|r| !r.is_skipped());
            let spent = &mut self.spent;
            shared
                .backlog
                .take(self.idx, &mut self.queue, room, is_live, spent);
            spent.clear();
        }
    }

    /// Tells the backlog how many records the local buffer still holds (for queue depth).
    fn report_held(&self) {
        self.backlog().set_held(self.idx, self.queue.len());
    }

    /// Waits up to `timeout` for `want` records in the live queue, then pulls it. Returns
    /// false when the queue is closed and empty.
    fn wait_for_queue(&mut self, want: usize, timeout: Duration) -> bool {
        let closed = self.backlog().wait(self.idx, want, deadline_after(timeout));
        self.pull_queue();
        !(closed && self.queue.is_empty() && self.backlog().is_finished(self.idx))
    }

    /// Whether this worker batches live records (async mode with a batch delay).
    fn batching(&self) -> bool {
        let settings = &self.shared.settings;
        matches!(settings.mode, ReplicationMode::Async) && !settings.async_batch_delay.is_zero()
    }

    /// Live records ready to send: pulled and still in the backlog.
    fn ready(&self) -> usize {
        self.queue.len() + self.backlog().len(self.idx)
    }

    /// Lets the live queue fill up to `room` records, for at most the async batch delay (the
    /// backlog wakes the worker once that many are there, or when the replicator closes), then
    /// pulls it.
    fn linger(&mut self, room: usize) {
        let want = room.saturating_sub(self.queue.len());
        if want > 0 && !self.shared.is_closing() {
            self.backlog().wait(
                self.idx,
                want,
                deadline_after(self.shared.settings.async_batch_delay),
            );
        }
        self.pull_queue();
    }

    fn retain_wal(&mut self, force: bool) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        // Moving the registration takes a lock in the engine: do it per window, not per ack.
        let due = session.acked >= session.retained + 1024 || session.in_flight == 0;
        if force || (due && session.acked != session.retained) {
            session.retained = session.acked;
            self.store.retain_wal(&self.consumer, session.acked);
        }
    }

    fn force_requested(&self) -> bool {
        self.replica().force_resync.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::{fill, room_is_small, Fill};

    #[test]
    fn sync_modes_send_at_once() {
        assert_eq!(fill(false, 1, 256, 0, 256), Fill::SendNow);
        assert_eq!(fill(false, 1, 1, 255, 256), Fill::SendNow);
    }

    #[test]
    fn a_full_window_is_sent_at_once() {
        assert_eq!(fill(true, 300, 256, 0, 256), Fill::SendNow);
        assert_eq!(fill(true, 200, 128, 128, 256), Fill::SendNow);
    }

    #[test]
    fn a_short_window_waits_for_acks_then_for_records() {
        // Little room left: acks first, however many records are ready.
        assert_eq!(fill(true, 500, 10, 246, 256), Fill::AwaitAcksFirst);
        // Room, but too few records while acks are pending: read the acks.
        assert_eq!(fill(true, 3, 200, 56, 256), Fill::AwaitAcksFirst);
        // Nothing in flight: let the window fill.
        assert_eq!(fill(true, 3, 256, 0, 256), Fill::Linger);
    }

    #[test]
    fn room_is_small_only_with_acks_pending() {
        assert!(room_is_small(200, 56, 256));
        assert!(!room_is_small(128, 128, 256));
        assert!(!room_is_small(0, 3, 3));
        assert!(!room_is_small(0, 1, 1));
    }

    #[test]
    fn a_window_of_one_still_moves() {
        assert_eq!(fill(true, 1, 1, 0, 1), Fill::SendNow);
        assert_eq!(fill(true, 0, 1, 0, 1), Fill::Linger);
    }
}
