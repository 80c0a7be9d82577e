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

mod endpoint;
pub mod epoch;
mod error;
mod health;
mod lag;
mod plan;
mod protocol;
mod quorum;
mod retry;
mod transport;

pub use endpoint::{EndpointStats, ReplicaEndpoint};
pub use error::{Error, Result};
pub use health::{HealthEvent, ReplicaHealth, ReplicaState};
pub use lag::{Lag, LagBook, LAG_BOOK_CAPACITY};
pub use plan::{discard_stale, next_step, NextStep, PlanInput};
pub use protocol::{
    Ack, Hello, HelloReply, SharedRecord, SnapshotAck, SnapshotChunk, SnapshotPiece,
    SnapshotProgress,
};
pub use quorum::{acked_count, admit, majority, quorum_reached};
pub use retry::Backoff;
pub use transport::{BoxedTransport, Transport, DEFAULT_ACK_TIMEOUT};
