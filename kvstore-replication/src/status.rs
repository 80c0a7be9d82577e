//! What `Replicator::status()` reports.

use std::time::Instant;

use kvstore_core::Lsn;

use crate::health::ReplicaState;
use crate::lag::Lag;

/// The replication picture at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationStatus {
    /// This master's epoch.
    pub epoch: u64,
    /// The master's last committed LSN.
    pub master_last_lsn: Lsn,
    /// Records waiting in the live queues of all replicas together.
    pub queue_depth: usize,
    /// One entry per replica, in the order they were added.
    pub replicas: Vec<ReplicaStatus>,
}

impl ReplicationStatus {
    /// Replicas counting towards `min_replicas_to_write` (catching up or streaming).
    pub fn healthy(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state.is_healthy())
            .count()
    }
}

/// One replica's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// The transport's description.
    pub name: String,
    /// Health state.
    pub state: ReplicaState,
    /// Everything up to this LSN is applied on the replica.
    pub acked_lsn: Lsn,
    /// How far behind the master it is.
    pub lag: Lag,
    /// Records acknowledged by the replica (each counts once per delivery).
    pub sends_ok: u64,
    /// Failed calls (errors and ack timeouts).
    pub sends_failed: u64,
    /// Resends after a gap or a failure.
    pub retries: u64,
    /// Full resyncs from a snapshot started.
    pub resyncs: u64,
    /// Records not queued because the replica's queue was full (read from the WAL instead).
    pub queue_overflows: u64,
    /// Records in this replica's live queue.
    pub queue_depth: usize,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When a call last succeeded.
    pub last_success: Option<Instant>,
    /// When a call last failed.
    pub last_failure: Option<Instant>,
    /// The last error, for operators.
    pub last_error: Option<String>,
    /// Sealed WAL bytes kept for this replica.
    pub wal_retained_bytes: u64,
    /// Further WAL bytes that may pile up before this replica needs a full resync.
    pub bytes_until_full_resync: u64,
}
