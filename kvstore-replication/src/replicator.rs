//! `Replicator`: the handle that owns the workers; attaching it installs the commit hook.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvstore_core::{KvStore, Lsn};
use parking_lot::Mutex;

use crate::config::ReplicatorBuilder;
use crate::epoch;
use crate::error::{Error, Result};
use crate::queue::Backlog;
use crate::shared::{AckBoard, ReplicaShared, Shared};
use crate::status::{ReplicaStatus, ReplicationStatus};
use crate::timeline;
use crate::worker::Worker;

/// Streams a master store's commits to its replicas, one worker thread per replica.
///
/// Created with [`Replicator::builder`] and [`ReplicatorBuilder::attach`] (or
/// [`WithReplicas::with_replicas`]). Dropping it detaches the hook, lets workers deliver what is
/// committed (up to the shutdown timeout; then a worker still blocked in its transport is
/// interrupted, see [`Transport::interrupter`]) and joins them; whatever is not delivered
/// stays in the master's WAL for the next replicator.
///
/// [`Transport::interrupter`]: crate::Transport::interrupter
pub struct Replicator {
    shared: Arc<Shared>,
    store: KvStore,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Never sent on: dropping it wakes every worker's pauses at shutdown.
    shutdown: Mutex<Option<crossbeam_channel::Sender<()>>>,
    /// Ends the workers' transport calls once the shutdown timeout has passed.
    interrupters: Vec<crate::transport::Interrupter>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("epoch", &self.shared.epoch)
            .field("replicas", &self.shared.replicas.len())
            .finish()
    }
}

/// Releases the WAL retained for replicas a master on `store` streamed to: for a node that
/// stops being a master (it becomes a replica, whose log is its master's business). A
/// [`Replicator`]'s drop keeps that retention, saved with the store like a PostgreSQL
/// replication slot, so that a replica that is down while its master restarts still
/// catches up from the log rather than by a full resync. [`ReplicaEndpoint::open`] calls it;
/// call it with no replicator attached (a running one registers its replicas again).
///
/// [`ReplicaEndpoint::open`]: crate::ReplicaEndpoint::open
pub fn release_replica_retention(store: &KvStore) {
    for (consumer, _) in store.wal_consumers() {
        if crate::worker::is_replica_consumer(&consumer) {
            store.release_wal(&consumer);
        }
    }
}

/// Releases the retention kept for replicas no longer among `names` (the operator removed
/// them): nothing else would ever move or drop it.
fn release_unlisted_replicas(store: &KvStore, names: &[String]) {
    for (consumer, lsn) in store.wal_consumers() {
        let listed = names
            .iter()
            .any(|name| crate::worker::wal_consumer_name(name) == consumer);
        if crate::worker::is_replica_consumer(&consumer) && !listed {
            tracing::info!(%consumer, lsn, "no longer a replica: releasing the WAL kept for it");
            store.release_wal(&consumer);
        }
    }
}

/// Adds `with_replicas` to [`KvStore`], for `KvStore::open(dir)?.with_replicas(builder)`.
pub trait WithReplicas {
    /// Attaches a [`Replicator`] built by `builder` to this store.
    fn with_replicas(&self, builder: ReplicatorBuilder) -> Result<Replicator>;
}

impl WithReplicas for KvStore {
    fn with_replicas(&self, builder: ReplicatorBuilder) -> Result<Replicator> {
        builder.attach(self)
    }
}

impl ReplicatorBuilder {
    /// Validates the configuration, loads (or stores) the master's epoch, starts one worker
    /// per replica and installs the commit hook on `store`. Fails before starting anything if
    /// the configuration is invalid.
    pub fn attach(self, store: &KvStore) -> Result<Replicator> {
        self.validate()?;
        let epoch = epoch::master_epoch(store.path(), self.settings.epoch)?;
        // Before the first write replicas will see from this master: see `timeline`.
        let timeline = timeline::begin_incarnation(store, epoch)?;
        let names: Vec<String> = self.transports.iter().map(|t| t.describe()).collect();
        release_unlisted_replicas(store, &names);
        let capacity = self.settings.queue_capacity;
        let shared = Arc::new(Shared {
            epoch,
            timeline,
            replicas: names.into_iter().map(ReplicaShared::new).collect(),
            acks: AckBoard::new(self.transports.len()),
            backlog: Backlog::new(capacity, self.settings.queue_bytes, self.transports.len()),
            closing: std::sync::atomic::AtomicBool::new(false),
            settings: self.settings,
        });
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded::<()>(0);
        let interrupters: Vec<_> = self
            .transports
            .iter()
            .filter_map(|t| t.interrupter())
            .collect();
        let mut workers = Vec::new();
        for (idx, transport) in self.transports.into_iter().enumerate() {
            let worker = Worker::new(
                idx,
                shared.clone(),
                store.clone(),
                transport,
                shutdown_rx.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("kvstore-repl-{idx}"))
                .spawn(move || worker.run_supervised());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    let replicator = Replicator {
                        shared,
                        store: store.clone(),
                        workers: Mutex::new(workers),
                        shutdown: Mutex::new(Some(shutdown_tx)),
                        interrupters,
                    };
                    drop(replicator);
                    return Err(Error::Io {
                        path: store.path().to_path_buf(),
                        source: e,
                    });
                }
            }
        }
        store.set_commit_hook(Some(shared.clone()));
        Ok(Replicator {
            shared,
            store: store.clone(),
            workers: Mutex::new(workers),
            shutdown: Mutex::new(Some(shutdown_tx)),
            interrupters,
        })
    }
}

impl Replicator {
    /// A builder with the defaults documented on each setter.
    pub fn builder() -> ReplicatorBuilder {
        ReplicatorBuilder::default()
    }

    /// This master's epoch.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// Waits until `replicas` replicas have applied `lsn` or `timeout` passes; returns how many
    /// have (Redis `WAIT`). Only replicas in a session count, as only connected replicas do in
    /// Redis: one that never connected has acknowledged nothing, and one that is down is not
    /// counted on. Never fails: fewer than asked is the caller's to judge.
    pub fn wait_for(&self, lsn: Lsn, replicas: usize, timeout: Duration) -> usize {
        self.shared.acks.wait_for(lsn, replicas, timeout)
    }

    /// Ends every quorum wait now and from now on: writes waiting for replicas in sync mode
    /// get [`kvstore_core::Error::QuorumNotReached`] with the acks they have (the writes stay
    /// durable here), and so does every later one; `wait_for` answers at once. For a node
    /// about to stop or to stop being a master, so that a wait as long as the sync timeout
    /// does not hold it up. Replication itself goes on until the replicator is dropped.
    pub fn release_waiters(&self) {
        self.shared.acks.close();
    }

    /// Waits until at least `replicas` replicas are healthy or `timeout` passes; returns whether
    /// they are (useful right after attaching, before `min_replicas_to_write` admits writes).
    pub fn wait_healthy(&self, replicas: usize, timeout: Duration) -> bool {
        let deadline = crate::shared::deadline_after(timeout);
        loop {
            if self.shared.healthy_count() >= replicas {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Operator action: replace the contents of replica `name` (e.g. a diverged one) with a
    /// snapshot of this master. Returns false if no replica has that name.
    pub fn force_resync(&self, name: &str) -> bool {
        match self.shared.replicas.iter().find(|r| r.name == name) {
            Some(replica) => {
                replica.force_resync.store(true, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// Metrics of every replica and the queue depth.
    pub fn status(&self) -> ReplicationStatus {
        let master_last_lsn = self.store.last_lsn();
        let now = Instant::now();
        let replicas = self.replica_statuses(master_last_lsn, now);
        ReplicationStatus {
            epoch: self.shared.epoch,
            master_last_lsn,
            queue_depth: self.shared.queue_depth(),
            replicas,
        }
    }

    fn replica_statuses(&self, master_last_lsn: Lsn, now: Instant) -> Vec<ReplicaStatus> {
        let acked: Vec<Lsn> = (0..self.shared.replicas.len())
            .map(|idx| self.shared.acks.get(idx))
            .collect();
        let lags = self.shared.backlog.lags(&acked, master_last_lsn, now);
        self.shared
            .replicas
            .iter()
            .enumerate()
            .map(|(idx, r)| {
                let acked_lsn = acked[idx];
                let health = r.health.lock().clone();
                let retention = self.store.wal_retention(acked_lsn);
                ReplicaStatus {
                    name: r.name.clone(),
                    state: health.state,
                    acked_lsn,
                    lag: lags[idx],
                    sends_ok: r.sends_ok.load(Ordering::Relaxed),
                    sends_failed: r.sends_failed.load(Ordering::Relaxed),
                    retries: r.retries.load(Ordering::Relaxed),
                    resyncs: r.resyncs.load(Ordering::Relaxed),
                    queue_overflows: r.queue_overflows.load(Ordering::Relaxed),
                    queue_depth: self.shared.backlog.depth(idx),
                    consecutive_failures: health.consecutive_failures,
                    last_success: health.last_success,
                    last_failure: health.last_failure,
                    last_error: r.last_error.lock().clone(),
                    wal_retained_bytes: retention.retained_bytes,
                    bytes_until_full_resync: if retention.available {
                        retention.bytes_until_resync
                    } else {
                        0
                    },
                }
            })
            .collect()
    }
}

/// How long past the shutdown timeout a closing replicator lets its workers stop by
/// themselves before it interrupts their transports.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

impl Drop for Replicator {
    fn drop(&mut self) {
        // Detach first so no new record is queued, then close the queues: workers drain what
        // is committed (up to the shutdown timeout) and exit.
        // Only our own hook: a Replicator attached after this one keeps its hook.
        let ours: Arc<dyn kvstore_core::CommitHook> = self.shared.clone();
        self.store.remove_commit_hook(&ours);
        self.shared.closing.store(true, Ordering::Release);
        self.shared.backlog.close();
        drop(self.shutdown.lock().take());
        let workers: Vec<JoinHandle<()>> = self.workers.lock().drain(..).collect();
        // Each worker stops by itself within the shutdown timeout, unless it is blocked in a
        // call to a stalled replica: past it (and a little grace), those calls are ended.
        let deadline =
            crate::shared::deadline_after(self.shared.settings.shutdown_timeout + SHUTDOWN_GRACE);
        while workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if workers.iter().any(|w| !w.is_finished()) {
            tracing::warn!("replication workers still blocked after the shutdown timeout; interrupting their links");
            for interrupt in &self.interrupters {
                interrupt();
            }
        }
        for handle in workers {
            if handle.join().is_err() {
                tracing::error!("a replication worker panicked during shutdown");
            }
        }
        // Writers still waiting for a quorum get their answer (not reached) now.
        self.shared.acks.close();
        // The WAL stays retained for the replicas (saved with the store), so that one that is
        // down while this master restarts can still catch up from the log: see
        // `release_replica_retention` for a node that stops being a master.
    }
}
