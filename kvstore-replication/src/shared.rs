//! State shared by the commit hook, the workers and the `Replicator` handle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvstore_core::{CommitHook, EncodedWalRecord, Lsn, WalRecord};
use parking_lot::{Condvar, Mutex};

use crate::config::{ReplicationMode, Settings};
use crate::health::{HealthEvent, ReplicaHealth, ReplicaState};
use crate::queue::Backlog;
use crate::quorum;
use crate::timeline::Timeline;

/// How often (in records) the lag book forgets what every replica acknowledged.
const LAG_TRIM_EVERY: Lsn = 4096;

/// Counters and health of one replica, written by its worker, read by `status()`.
#[derive(Debug)]
pub(crate) struct ReplicaShared {
    pub name: String,
    pub health: Mutex<ReplicaHealth>,
    pub last_error: Mutex<Option<String>>,
    pub sends_ok: AtomicU64,
    pub sends_failed: AtomicU64,
    pub retries: AtomicU64,
    pub resyncs: AtomicU64,
    pub queue_overflows: AtomicU64,
    pub force_resync: AtomicBool,
    /// Mirrors whether `health.state` is unhealthy or diverged, so the commit hook can skip
    /// the replica without taking the health lock on every put.
    skipped: AtomicBool,
}

impl ReplicaShared {
    pub fn new(name: String) -> Self {
        ReplicaShared {
            name,
            health: Mutex::new(ReplicaHealth::default()),
            last_error: Mutex::new(None),
            sends_ok: AtomicU64::new(0),
            sends_failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            queue_overflows: AtomicU64::new(0),
            force_resync: AtomicBool::new(false),
            skipped: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> ReplicaState {
        self.health.lock().state
    }

    /// Sets the state directly (not through a health event), keeping the hook's mirror.
    pub fn set_state(&self, state: ReplicaState) {
        let mut health = self.health.lock();
        health.state = state;
        self.mirror(state);
    }

    fn mirror(&self, state: ReplicaState) {
        let skipped = matches!(state, ReplicaState::Unhealthy | ReplicaState::Diverged);
        self.skipped.store(skipped, Ordering::Release);
    }

    /// Whether the commit hook leaves this replica out (unhealthy or diverged: its worker
    /// catches up from the WAL once it is reachable again, so nothing is lost).
    pub fn is_skipped(&self) -> bool {
        self.skipped.load(Ordering::Acquire)
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The instant `timeout` from now; for a timeout longer than the clock can count
/// (`Duration::MAX` meaning "no limit"), a century from now instead of a panic.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Each replica's cumulative acked LSN and whether it is in a session now, with a condition
/// variable for quorum waits.
#[derive(Debug, Default)]
pub(crate) struct AckBoard {
    slots: Mutex<Vec<AckSlot>>,
    changed: Condvar,
    /// Set (under `slots`' lock) once no ack can come any more: the workers are gone.
    closed: AtomicBool,
}

#[derive(Debug, Clone, Copy, Default)]
struct AckSlot {
    acked: Lsn,
    /// The id the replica gave in its last HELLO reply.
    replica_id: Option<u64>,
    /// When the session last ended (`None` while connected or before any).
    ended_at: Option<Instant>,
    /// A session is open: the replica said HELLO and has not failed since. Only such a
    /// replica counts for `WAIT` and quorums, as only connected replicas count in Redis: one
    /// that never connected has acknowledged nothing (its LSN 0 is no ack of an empty log),
    /// and one that is down is not "a replica that has the writes" to its caller.
    connected: bool,
}

impl AckBoard {
    pub fn new(replicas: usize) -> Self {
        AckBoard {
            slots: Mutex::new(vec![AckSlot::default(); replicas]),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// No ack will come any more (the replicator's workers have stopped): quorum waits end
    /// now with the count they have, instead of sleeping out their timeout.
    pub fn close(&self) {
        let _slots = self.slots.lock();
        self.closed.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// Replica `idx`, identified by `replica_id`, opened a session in which it has applied
    /// `lsn`. `Err(other)` if replica `other` is connected with the same id: one replica
    /// reached under two addresses, which must count once; `idx` stays disconnected.
    pub fn connect(&self, idx: usize, lsn: Lsn, replica_id: Option<u64>) -> Result<(), usize> {
        let mut slots = self.slots.lock();
        if let Some(id) = replica_id {
            let same = |(other, slot): &(usize, &AckSlot)| {
                *other != idx && slot.connected && slot.replica_id == Some(id)
            };
            if let Some((other, _)) = slots.iter().enumerate().find(same) {
                return Err(other);
            }
        }
        if let Some(slot) = slots.get_mut(idx) {
            *slot = AckSlot {
                acked: lsn,
                replica_id,
                ended_at: None,
                connected: true,
            };
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Whether a replica other than `idx` is connected with `replica_id`, or was until less
    /// than `grace` ago (it is likely reconnecting).
    pub fn held_elsewhere(&self, idx: usize, replica_id: u64, grace: Duration) -> bool {
        self.slots.lock().iter().enumerate().any(|(other, slot)| {
            other != idx
                && slot.replica_id == Some(replica_id)
                && (slot.connected || slot.ended_at.is_some_and(|at| at.elapsed() < grace))
        })
    }

    /// Replica `idx`'s session failed: it counts for no wait until it connects again. Its
    /// acked LSN stays (for lag and WAL retention) unless `forget` resets it to 0.
    pub fn disconnect(&self, idx: usize, forget: bool) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(idx) {
            if slot.connected {
                slot.ended_at = Some(Instant::now());
            }
            slot.connected = false;
            if forget {
                slot.acked = 0;
            }
        }
    }

    /// Sets replica `idx`'s acked LSN (it may go down when a replica restarted with less).
    pub fn set(&self, idx: usize, lsn: Lsn) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(idx) {
            if slot.acked != lsn {
                slot.acked = lsn;
                self.changed.notify_all();
            }
        }
    }

    pub fn get(&self, idx: usize) -> Lsn {
        self.slots.lock().get(idx).map_or(0, |slot| slot.acked)
    }

    pub fn min(&self) -> Lsn {
        self.slots
            .lock()
            .iter()
            .map(|slot| slot.acked)
            .min()
            .unwrap_or(0)
    }

    /// Waits until `required` connected replicas acked `lsn` or `timeout` passes; returns how
    /// many did.
    pub fn wait_for(&self, lsn: Lsn, required: usize, timeout: Duration) -> usize {
        let deadline = deadline_after(timeout);
        let mut slots = self.slots.lock();
        loop {
            let count = connected_acks(&slots, lsn);
            if count >= required || self.closed.load(Ordering::Acquire) {
                return count;
            }
            if self.changed.wait_until(&mut slots, deadline).timed_out() {
                return connected_acks(&slots, lsn);
            }
        }
    }
}

/// How many connected replicas acknowledged `lsn` (see [`quorum::acked_count`]).
fn connected_acks(slots: &[AckSlot], lsn: Lsn) -> usize {
    slots
        .iter()
        .filter(|slot| slot.connected && slot.acked >= lsn)
        .count()
}

/// The commit hook's state. The store holds it (as its hook); the workers and the handle
/// share it.
pub(crate) struct Shared {
    pub settings: Settings,
    pub epoch: u64,
    /// This master's incarnations, sent in every HELLO.
    pub timeline: Timeline,
    pub replicas: Vec<ReplicaShared>,
    pub acks: AckBoard,
    /// The replicas' live queue, closed when the replicator closes.
    pub backlog: Backlog,
    pub closing: AtomicBool,
}

impl Shared {
    pub fn healthy_count(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state().is_healthy())
            .count()
    }

    pub fn queue_depth(&self) -> usize {
        self.backlog.total_depth()
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Records a health event for replica `idx` and returns its new state.
    pub fn health_event(&self, idx: usize, event: HealthEvent) -> ReplicaState {
        let Some(replica) = self.replicas.get(idx) else {
            return ReplicaState::Unhealthy;
        };
        let mut health = replica.health.lock();
        let state = health.on_event(event, Instant::now(), self.settings.failure_threshold);
        replica.mirror(state);
        drop(health);
        // Waking quorum waiters is not needed: health does not change acks.
        state
    }
}

impl CommitHook for Shared {
    fn admit(&self) -> kvstore_core::Result<()> {
        if self.settings.min_replicas_to_write == 0 {
            return Ok(());
        }
        quorum::admit(self.healthy_count(), self.settings.min_replicas_to_write)
    }

    fn committed(&self, record: Arc<WalRecord>) {
        // The engine calls `committed_encoded`; this serves callers holding operations.
        self.committed_encoded(&EncodedWalRecord::from(&*record));
    }

    fn committed_encoded(&self, record: &EncodedWalRecord) {
        self.committed_bytes(record.lsn(), record.as_bytes());
    }

    fn committed_bytes(&self, lsn: Lsn, bytes: &[u8]) {
        if lsn.is_multiple_of(LAG_TRIM_EVERY) {
            self.backlog.forget_lag_through(self.acks.min());
        }
        // An unhealthy or diverged replica is left out: its worker catches up from the WAL
        // once it is reachable again, so nothing is lost by not queueing.
        let queue = !self.replicas.iter().all(ReplicaShared::is_skipped);
        self.backlog
            .push(lsn, bytes, Instant::now(), queue, |idx, missed| {
                if let Some(replica) = self.replicas.get(idx).filter(|r| !r.is_skipped()) {
                    replica.queue_overflows.fetch_add(missed, Ordering::Relaxed);
                }
            });
    }

    fn wait_replicated(&self, lsn: Lsn) -> kvstore_core::Result<()> {
        let ReplicationMode::Sync { quorum, timeout } = self.settings.mode else {
            return Ok(());
        };
        let acked = self.acks.wait_for(lsn, quorum, timeout);
        if acked >= quorum {
            Ok(())
        } else {
            Err(kvstore_core::Error::QuorumNotReached {
                lsn,
                acked,
                required: quorum,
            })
        }
    }
}
