//! `kvstore-replication`: streams a master's committed writes to replicas.
//!
//! (Work in progress: the transport contract and protocol messages are stable; the
//! replicator lands next.)
//!
//! # Layout
//! - [`transport`](Transport): the trait a master's worker drives, one per replica
//! - [`protocol`](Hello): the messages of a replication session
//! - [`endpoint`](ReplicaEndpoint): the replica side, shared by every transport
//! - [`epoch`]: the durable epoch file
//! - [`error`](Error): the crate's error type

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
mod quorum;
mod replicator;
mod retry;
mod shared;
mod status;
mod transport;
mod worker;

pub use config::{
    ReplicationMode, ReplicatorBuilder, DEFAULT_FAILURE_THRESHOLD, DEFAULT_PROBE_INTERVAL,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SNAPSHOT_CHUNK_BYTES,
    DEFAULT_WINDOW_RECORDS,
};
pub use endpoint::{EndpointStats, ReplicaEndpoint};
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
pub use replicator::{Replicator, WithReplicas};
pub use retry::Backoff;
pub use status::{ReplicaStatus, ReplicationStatus};
pub use transport::{BoxedTransport, Transport, DEFAULT_ACK_TIMEOUT};
