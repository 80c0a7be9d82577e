//! `kvstore-replication`: streams a master's committed writes to replicas.
//!
//! (Work in progress: the transport contract and protocol messages are stable; the
//! replicator lands next.)
//!
//! # Layout
//! - [`transport`](Transport): the trait a master's worker drives, one per replica
//! - [`protocol`](Hello): the messages of a replication session
//! - [`epoch`]: the durable epoch file
//! - [`error`](Error): the crate's error type

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod epoch;
mod error;
mod protocol;
mod transport;

pub use error::{Error, Result};
pub use protocol::{
    Ack, Hello, HelloReply, SharedRecord, SnapshotAck, SnapshotChunk, SnapshotPiece,
    SnapshotProgress,
};
pub use transport::{BoxedTransport, Transport, DEFAULT_ACK_TIMEOUT};
