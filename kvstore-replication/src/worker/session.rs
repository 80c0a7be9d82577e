//! The worker's moves within a session: HELLO, sending windows, reading acks, full resync.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kvstore_core::Lsn;

use super::cursor::{SnapshotCursor, WalCursor};
use super::{Fill, Session, Worker};
use crate::error::Error;
use crate::health::{HealthEvent, ReplicaState};
use crate::plan::{discard_stale, next_step, NextStep, PlanInput};
use crate::protocol::{Ack, Hello, SharedRecord};
use crate::shared::ReplicaShared;

/// How long a worker waits for the live queue before reading a small lag from the WAL: the
/// hook queues a record just after the engine publishes it, so the queue normally wins.
const QUEUE_RACE_WAIT: Duration = Duration::from_millis(2);

/// How long a worker that found its replica connected under another name stays quiet after
/// that other session ended, before it may say HELLO itself.
const SAME_REPLICA_GRACE: Duration = Duration::from_secs(10);

impl Worker {
    /// Opens a session with HELLO, unless the replica is diverged or unhealthy and not yet due
    /// for a probe. Returns whether a session is open.
    ///
    /// A diverged replica is probed with a plain HELLO once per probe interval: it refuses
    /// again and stays untouched while it holds records the master lacks, and is accepted once
    /// an operator has emptied or restored it (or forces a resync through
    /// [`crate::Replicator::force_resync`]).
    pub(super) fn open_session(&mut self) -> bool {
        let settings = &self.shared.settings;
        let probe_interval = settings.probe_interval;
        if let Some(id) = self.same_replica_as {
            // Quiet while the other name holds the replica, and for a while after its session
            // ends (it is likely reconnecting): only a replica gone from there is taken over.
            if self
                .shared
                .acks
                .held_elsewhere(self.idx, id, SAME_REPLICA_GRACE)
            {
                self.pause(probe_interval);
                return false;
            }
            self.same_replica_as = None;
        }
        let state = self.replica().state();
        let forced = state == ReplicaState::Diverged && (self.forcing || self.force_requested());
        if forced {
            self.shared
                .health_event(self.idx, HealthEvent::ForcedResync);
            self.forcing = true;
        } else if matches!(state, ReplicaState::Diverged | ReplicaState::Unhealthy) {
            let due = self
                .replica()
                .health
                .lock()
                .probe_due(Instant::now(), probe_interval);
            if !due {
                self.pause(Duration::from_millis(10).min(probe_interval));
                return false;
            }
        }
        let rejoin_probe = state == ReplicaState::Diverged && !forced;
        // Kept until the snapshot is installed: a failure before that retries forced.
        if self.force_requested() {
            self.forcing = true;
        }
        let force = self.forcing;
        if self.attempt > 0 {
            ReplicaShared::bump(&self.replica().retries);
        }
        let master_last = self.store.last_lsn();
        let hello = Hello {
            master_id: self.shared.settings.master_id.clone(),
            epoch: self.shared.epoch,
            master_last_lsn: master_last,
            force_resync: force,
            timeline: self.shared.timeline.clone(),
        };
        let reply = match self.transport.hello(&hello) {
            // A replica that claims more than this master's log holds cannot have it from
            // this master (every record sent so far is at or below `master_last`): booking
            // its claim would count it for writes it never received. A conforming replica
            // refuses such a master itself (`Diverged`); this guards against one that does not.
            Ok(reply) if !force && reply.applied_lsn > master_last => {
                self.fail(Error::Diverged {
                    replica_lsn: reply.applied_lsn,
                    master_lsn: master_last,
                });
                return false;
            }
            Ok(reply) => reply,
            Err(e) => {
                self.fail(e);
                return false;
            }
        };
        if rejoin_probe {
            tracing::info!(replica = %self.replica().name, applied = reply.applied_lsn, "a diverged replica accepted the master again");
            self.shared.health_event(self.idx, HealthEvent::Rejoined);
        }
        let applied = if force { 0 } else { reply.applied_lsn };
        if let Err(other) = self
            .shared
            .acks
            .connect(self.idx, applied, reply.replica_id)
        {
            self.same_replica_as = reply.replica_id;
            let other = self
                .shared
                .replicas
                .get(other)
                .map_or_else(|| format!("replica {other}"), |r| r.name.clone());
            self.fail(Error::Protocol(format!(
                "this is the replica already connected as {other} (the same replica id): a \
                 replica listed under two addresses counts once"
            )));
            return false;
        }
        self.session = Some(Session {
            acked: applied,
            sent: applied,
            in_flight: 0,
            gap_seen: false,
            retained: applied,
        });
        let resumable = self
            .snapshot
            .as_mut()
            .is_some_and(|c| c.resume(reply.snapshot_in_progress));
        if !resumable {
            self.snapshot = None;
        }
        // A resumed snapshot needs the WAL from its own LSN on, not from the replica's old
        // position: pinned there, the retention limit would count all the log before the
        // snapshot, drop the pin, and let compaction take the records after it too.
        let needed_from = self.snapshot.as_ref().map_or(applied, SnapshotCursor::lsn);
        self.store.retain_wal(&self.consumer, needed_from);
        self.resync_now = force || resumable;
        let caught_up = !self.resync_now && applied >= master_last;
        self.shared
            .health_event(self.idx, HealthEvent::Connected { caught_up });
        if caught_up {
            self.attempt = 0;
            self.unproven = false;
        } else {
            self.unproven = true;
        }
        true
    }

    /// One move of an open session. Returns false when the worker should stop.
    pub(super) fn step(&mut self) -> bool {
        let Some(session) = self.session else {
            return true;
        };
        self.pull_queue();
        if discard_stale(&mut self.queue, session.sent, |r| r.lsn()) > 0 {
            // Queue depth counts what this buffer holds: records the replica already has
            // must not be reported as waiting until the worker's next heartbeat.
            self.report_held();
        }
        let master_last = self.store.last_lsn();
        let input = PlanInput {
            acked: session.acked,
            sent: session.sent,
            in_flight: session.in_flight,
            window: self.shared.settings.window_records,
            gap_seen: session.gap_seen,
            master_last,
            queue_front: self.queue.front().map(|r| r.lsn()),
            wal_start: 0,
        };
        match next_step(&input) {
            NextStep::AwaitAcks => self.await_ack(),
            NextStep::Rewind => {
                ReplicaShared::bump(&self.replica().retries);
                self.wal = None;
                if let Some(s) = self.session.as_mut() {
                    s.sent = s.acked;
                    s.gap_seen = false;
                }
            }
            NextStep::SendFromQueue => {
                let room = input.window - input.in_flight;
                match super::fill(
                    self.batching(),
                    self.ready(),
                    room,
                    input.in_flight,
                    input.window,
                ) {
                    Fill::SendNow => {}
                    Fill::AwaitAcksFirst => {
                        self.await_ack();
                        return true;
                    }
                    Fill::Linger => self.linger(room),
                }
                let mut batch: Vec<SharedRecord> = Vec::with_capacity(room.min(self.queue.len()));
                let mut next = session.sent + 1;
                while batch.len() < room && self.queue.front().is_some_and(|r| r.lsn() == next) {
                    if let Some(record) = self.queue.pop_front() {
                        batch.push(record);
                        next += 1;
                    }
                }
                self.report_held();
                self.send(batch);
            }
            NextStep::CatchUpFromWal { after } => self.catch_up(after, &input),
            NextStep::FullResync => self.full_resync(),
            NextStep::Idle => {
                if self.shared.is_closing() {
                    return false;
                }
                self.mark_caught_up(session.acked, master_last);
                let heartbeat = self.shared.settings.probe_interval;
                let before = self.queue.len();
                if !self.wait_for_queue(1, heartbeat) {
                    return !self.shared.is_closing();
                }
                if self.queue.len() == before && self.store.last_lsn() == master_last {
                    // Idle for a whole heartbeat: re-HELLO to check the replica is still there
                    // (and still has what it acknowledged).
                    self.session = None;
                }
            }
        }
        true
    }

    fn catch_up(&mut self, after: Lsn, input: &PlanInput) {
        if super::room_is_small(
            input.in_flight,
            input.window - input.in_flight,
            input.window,
        ) {
            // Windows read from the WAL stay large: acks first, then a batch of at least half.
            self.await_ack();
            return;
        }
        let continuing = self.wal.as_ref().is_some_and(|c| c.continues(after));
        if !continuing
            && input.queue_front.is_none()
            && input.master_last - after <= input.window as u64
            && !self.shared.is_closing()
        {
            // Probably a record published but not queued yet: give the queue a moment.
            let before = self.queue.len();
            self.wait_for_queue(1, QUEUE_RACE_WAIT);
            if self.queue.len() > before {
                return;
            }
        }
        if !continuing {
            match WalCursor::open(&self.store, after) {
                Ok(cursor) => self.wal = Some(cursor),
                Err(Error::Core(kvstore_core::Error::WalCompacted { .. })) => {
                    if input.in_flight == 0 {
                        self.full_resync();
                    } else {
                        self.await_ack();
                    }
                    return;
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        let room = input.window - input.in_flight;
        let batch = match self.wal.as_mut().map(|c| c.read(room)) {
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                // The master cannot read its own log (bit rot, an I/O error): failing the
                // replica's session would only retry the same record forever and mark a
                // healthy replica as failing. A snapshot reads the live values instead, and
                // the log is needed again only from its LSN on.
                tracing::warn!(replica = %self.replica().name, error = %e, "reading the master's WAL failed; falling back to a full resync");
                *self.replica().last_error.lock() = Some(e.to_string());
                self.wal = None;
                if input.in_flight == 0 {
                    self.full_resync();
                } else {
                    self.await_ack();
                }
                return;
            }
            None => return,
        };
        if batch.is_empty() {
            // The cursor reached the end it saw when opened; newer records need a new one.
            self.wal = None;
            return;
        }
        if self.replica().state() == ReplicaState::Streaming {
            self.shared
                .health_event(self.idx, HealthEvent::Success { caught_up: false });
        }
        self.send(batch);
    }

    fn send(&mut self, batch: Vec<SharedRecord>) {
        let Some(last) = batch.last().map(|r| r.lsn()) else {
            return;
        };
        let count = batch.len();
        match self.transport.send_window(batch) {
            Ok(()) => {
                if let Some(s) = self.session.as_mut() {
                    s.sent = last;
                    s.in_flight += count;
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Waits for acknowledgements and books every one that has arrived, as one step: counters,
    /// health, the ack board and WAL retention move once per batch, not once per record.
    fn await_ack(&mut self) {
        let timeout = self.shared.settings.ack_timeout;
        let mut acks = std::mem::take(&mut self.acks);
        acks.clear();
        match self.transport.recv_acks(timeout, &mut acks) {
            Ok(()) if acks.is_empty() => self.fail(Error::transport(
                self.transport.describe(),
                format!("no acknowledgement within {timeout:?}"),
            )),
            Ok(()) => self.book_acks(&acks),
            Err(e) => self.fail(e),
        }
        self.acks = acks;
    }

    fn book_acks(&mut self, acks: &[Ack]) {
        let Some(mut s) = self.session else {
            return;
        };
        let before = s.acked;
        let mut contradiction = None;
        let mut booked = 0u64;
        for ack in acks {
            if ack.applied_lsn > s.sent || ack.applied_lsn < s.acked {
                // Cumulative acks of one session lie between what the replica acknowledged
                // and what was sent. Anything else means the replica changed under the
                // session (replaced, restored, written by someone else): booking an ack
                // beyond `sent` would count writes it never received and skip them, and
                // rewinding to an `acked` it no longer has would resend into the same gap
                // forever. A new HELLO learns where it really stands.
                contradiction = Some(*ack);
                break;
            }
            booked += 1;
            s.in_flight = s.in_flight.saturating_sub(1);
            if ack.is_gap() {
                s.gap_seen = true;
            }
            s.acked = s.acked.max(ack.applied_lsn);
        }
        self.replica().sends_ok.fetch_add(
            booked + u64::from(contradiction.is_some()),
            Ordering::Relaxed,
        );
        self.session = Some(s);
        if s.acked > before {
            // Health before the ack board: whoever the board wakes (a quorum write, WAIT)
            // then sees the state this ack implies.
            let master_last = self.store.last_lsn();
            self.mark_caught_up(s.acked, master_last);
            self.shared.acks.set(self.idx, s.acked);
            self.retain_wal(false);
        }
        if let Some(ack) = contradiction {
            let (acked, sent) = (s.acked, s.sent);
            if ack.applied_lsn < acked {
                self.shared.acks.set(self.idx, ack.applied_lsn);
            }
            self.fail(Error::Protocol(format!(
                "replica acknowledged LSN {} for record {} in a session that sent up to \
                 {sent} and had acknowledged {acked}",
                ack.applied_lsn, ack.lsn
            )));
        }
    }

    /// Health after progress (or with nothing left to send): streaming once caught up,
    /// catching up otherwise.
    fn mark_caught_up(&mut self, acked: Lsn, master_last: Lsn) {
        let caught_up = acked >= master_last;
        let state = self.replica().state();
        let expected = if caught_up {
            ReplicaState::Streaming
        } else {
            ReplicaState::CatchingUp
        };
        if state != expected || self.unproven {
            self.proven();
            self.shared
                .health_event(self.idx, HealthEvent::Success { caught_up });
        }
    }

    /// The replica made progress on this session: failures and backoff start over.
    fn proven(&mut self) {
        self.unproven = false;
        self.attempt = 0;
    }

    /// Streams a snapshot (resuming an interrupted one when possible), then lets the session
    /// continue from the snapshot's LSN through the WAL.
    pub(super) fn full_resync(&mut self) {
        self.resync_now = false;
        self.wal = None;
        if self.snapshot.is_none() {
            ReplicaShared::bump(&self.replica().resyncs);
            // Pin the WAL first, so the records after the snapshot stay available.
            self.store.retain_wal(&self.consumer, self.store.last_lsn());
            let snapshot = self.store.snapshot();
            self.store.retain_wal(&self.consumer, snapshot.lsn());
            tracing::info!(replica = %self.replica().name, lsn = snapshot.lsn(), "full resync from a snapshot");
            self.snapshot = Some(SnapshotCursor::new(snapshot));
        }
        if !self.unproven {
            self.shared
                .health_event(self.idx, HealthEvent::Success { caught_up: false });
        }
        let chunk_bytes = self.shared.settings.snapshot_chunk_bytes;
        loop {
            if self.should_stop() {
                return;
            }
            let Some(cursor) = self.snapshot.as_mut() else {
                return;
            };
            let chunk = match cursor.chunk(chunk_bytes) {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.snapshot = None;
                    self.fail(e);
                    return;
                }
            };
            match self.transport.send_snapshot_chunk(&chunk) {
                Ok(ack) if ack.finished => {
                    let lsn = ack.applied_lsn;
                    self.proven();
                    self.shared
                        .health_event(self.idx, HealthEvent::Success { caught_up: false });
                    self.snapshot = None;
                    self.snapshot_furthest = 0;
                    self.forcing = false;
                    if let Some(s) = self.session.as_mut() {
                        s.acked = lsn;
                        s.sent = lsn;
                        s.in_flight = 0;
                        s.gap_seen = false;
                    }
                    self.shared.acks.set(self.idx, lsn);
                    self.retain_wal(true);
                    return;
                }
                Ok(ack) if ack.next_seq == chunk.seq + 1 => {
                    cursor.acknowledged();
                    let further = ack.next_seq > self.snapshot_furthest;
                    self.snapshot_furthest = self.snapshot_furthest.max(ack.next_seq);
                    if self.unproven && further {
                        self.proven();
                        self.shared
                            .health_event(self.idx, HealthEvent::Success { caught_up: false });
                    }
                }
                Ok(ack) => {
                    // The replica lost the install (it restarted): a fresh snapshot is needed.
                    self.snapshot = None;
                    self.fail(Error::Protocol(format!(
                        "replica expected snapshot chunk {} but {} was sent",
                        ack.next_seq, chunk.seq
                    )));
                    return;
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }
}
