//! `kvstore-net`: the network layer of kvstore. A RESP2 server (RESP3 after `HELLO 3`), so `redis-cli`,
//! `redis-benchmark` and every Redis client library work unchanged (and the seed's inline
//! commands, `PUT k v`, work over `nc`); a blocking client; and [`TcpTransport`], which
//! carries replication between `kvstore-server` processes as `REPLICATE …` commands
//! (records travel in the master's log encoding, `REPLICATE LOG`).
//!
//! ```
//! use kvstore_net::{Client, Server, ServerConfig};
//! # let dir = tempfile::tempdir()?;
//! let server = Server::start(ServerConfig::new(dir.path()).bind("127.0.0.1:0".parse()?))?;
//! let mut client = Client::connect(&server.local_addr().to_string())?;
//! client.set(b"fruit", b"apple")?;
//! assert_eq!(client.get(b"fruit")?, Some(b"apple".to_vec()));
//! server.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! Bytes flow `connection` → `parse` → `cmd` → the store, and replies flow back as [`Frame`]s.
//! - [`frame`](Frame): RESP values, their encoding in either protocol version, and decoding
//!   of replies (client side)
//! - [`parse`]: the incremental request decoder (multibulk and inline) and its [`Limits`];
//!   `inline`: quoting rules of inline lines; `request`: a decoded request, its arguments in
//!   one buffer
//! - `wire`: a connection's read and write buffers, socket-agnostic; `connection`: a
//!   blocking socket with its buffers (client side, and connections on their own thread)
//! - `server` ([`Server`]): binds and starts the [`event_loop`]s: a few I/O threads serving
//!   every connection (accept, connection limit, commit groups), which hand connections
//!   running blocking commands to threads of their own; `handler`: such a connection's loop
//! - `cmd/`: one file per command (`get.rs`, `set.rs`, `scan.rs`, `replicate.rs`, …);
//!   `pipeline`: pipelined `SET`s committed as one batch; `replica_pipeline`: pipelined
//!   `REPLICATE` records applied as one window on a replica; `log_blob`: `REPLICATE LOG`
//!   blobs (a window of records in the log's encoding), cut by the master, split by a replica
//! - `node`, `role`: shared server state and the replication role (master / replica,
//!   `REPLICAOF`, promotion); `scan_cursors`, `stats`
//! - [`client`](Client): a blocking client; [`tcp_transport`](TcpTransport): replication
//!   over TCP; [`digest`](Digest): the `DIGEST` hash; [`glob`](Glob): `SCAN MATCH` patterns
//! - [`config`](ServerConfig), [`error`](Error)

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod cmd;
pub mod config;
mod connection;
mod digest;
mod error;
pub mod event_loop;
pub mod frame;
mod glob;
mod handler;
mod inline;
mod log_blob;
mod node;
pub mod parse;
mod pipeline;
mod replica_pipeline;
mod request;
mod role;
mod scan_cursors;
mod server;
mod shutdown;
mod stats;
pub mod tcp_transport;
mod wire;

pub use client::Client;
pub use config::{names_this_node, ReplicationMode, ServerConfig};
pub use connection::{Connection, ReadError};
pub use digest::Digest;
pub use error::{Error, Result};
pub use frame::Frame;
pub use glob::Glob;
pub use log_blob::{MAX_LOG_BLOB_BYTES, MAX_LOG_BLOB_RECORDS};
pub use parse::{Limits, ProtocolError, RequestDecoder};
pub use server::{Server, ServerHandle};
pub use shutdown::ShutdownRequest;
pub use tcp_transport::TcpTransport;
