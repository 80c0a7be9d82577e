//! `kvstore-replication`: streams a master's committed writes to its replicas without ever
//! silently dropping one.
//!
//! A [`Replicator`] is the master's commit hook: each committed record is appended once to a
//! bounded backlog shared by the replicas, and one worker thread per replica reads it, pipelines a
//! window of records through a [`Transport`] and books its cumulative acks a batch at a time. When a queue overflows or
//! a replica was away, its worker catches up from the master's WAL; when the WAL no longer
//! holds what it needs, it streams a chunked, resumable snapshot and continues from its LSN.
//! Writes return after the local commit ([`ReplicationMode::Async`]) or after `k` replicas
//! acknowledged ([`ReplicationMode::Sync`], `QuorumNotReached` on timeout, never a silent
//! downgrade). Epochs protect replicas from stale or empty masters. The replica side is
//! [`ReplicaEndpoint`], shared by the in-process transport and `kvstore-net`'s TCP server.
//!
//! ```
//! use std::time::Duration;
//! use kvstore_core::KvStore;
//! use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator, WithReplicas};
//! # let (m, r) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let replica = InProcessReplica::open("replica-1", r.path(), Default::default())?;
//! let master = KvStore::open(m.path())?;
//! let replication = master.with_replicas(
//!     Replicator::builder()
//!         .replica(replica.transport())
//!         .mode(ReplicationMode::Sync { quorum: 1, timeout: Duration::from_secs(1) }),
//! )?;
//! master.put(b"k", b"v")?; // returns once the replica applied it
//! assert_eq!(replica.store().unwrap().get(b"k")?, Some(b"v".to_vec()));
//! assert_eq!(replication.status().replicas[0].acked_lsn, master.last_lsn());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! - [`transport`](Transport): the trait a master's worker drives, one per replica
//! - [`protocol`](Hello): the messages of a replication session
//! - [`endpoint`](ReplicaEndpoint): the replica side, shared by every transport (`apply` takes
//!   one record, `apply_many` a window in one commit group)
//! - [`inprocess`](InProcessTransport): an embedded replica with fault injection ([`Faults`])
//! - [`config`](ReplicatorBuilder): the builder, validated before threads start
//! - [`replicator`](Replicator): the handle; `shared`: the commit hook and ack board;
//!   `queue`: the replicas' shared bounded backlog (appended per record, read per window)
//! - `worker`: one thread per replica (`session`: HELLO, windows, acks, resync; `cursor`:
//!   WAL and snapshot cursors)
//! - pure decisions: [`retry`](Backoff), [`health`](ReplicaHealth), [`quorum`](acked_count),
//!   [`plan`](next_step), [`lag`](LagBook)
//! - [`status`](ReplicationStatus): metrics; [`epoch`]: the durable epoch file;
//!   [`timeline`]: which master incarnation wrote which LSNs (the divergence check);
//!   [`error`](Error): the crate's error type

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod endpoint;
pub mod epoch;
mod error;
mod health;
mod inprocess;
mod lag;
mod plan;
mod protocol;
mod queue;
mod quorum;
mod replicator;
mod retry;
mod shared;
mod status;
pub mod timeline;
mod transport;
mod worker;

pub use config::{
    ReplicationMode, ReplicatorBuilder, DEFAULT_ASYNC_BATCH_DELAY, DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_PROBE_INTERVAL, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_SNAPSHOT_CHUNK_BYTES, DEFAULT_WINDOW_RECORDS, MAX_SNAPSHOT_CHUNK_ENTRIES,
};
pub use endpoint::{EndpointStats, Opened, ReplicaEndpoint, Session};
pub use error::{Error, Result};
pub use health::{HealthEvent, ReplicaHealth, ReplicaState};
pub use inprocess::{Delay, Faults, InProcessReplica, InProcessTransport};
pub use lag::{Lag, LagBook, LAG_BOOK_CAPACITY};
pub use plan::{discard_stale, next_step, NextStep, PlanInput};
pub use protocol::{
    Ack, Hello, HelloReply, SharedRecord, SnapshotAck, SnapshotChunk, SnapshotPiece,
    SnapshotProgress,
};
pub use quorum::{acked_count, admit, majority, quorum_reached};
pub use replicator::{release_replica_retention, Replicator, WithReplicas};
pub use retry::Backoff;
pub use status::{ReplicaStatus, ReplicationStatus};
pub use timeline::{Timeline, TimelineEntry};
pub use transport::{BoxedTransport, Interrupter, Transport, DEFAULT_ACK_TIMEOUT};
