//! The `Transport` trait: how a master's worker talks to one replica.

use std::time::Duration;

use crate::error::Result;
use crate::protocol::{Ack, Hello, HelloReply, SharedRecord, SnapshotAck, SnapshotChunk};

/// A connection from the master to one replica, driven by that replica's worker thread.
///
/// Implementations: [`crate::InProcessTransport`] (an embedded replica, with fault injection)
/// and `kvstore_net::TcpTransport`. Every call blocks; the worker is the only caller, so
/// implementations need `Send` but not `Sync`. The trait is object safe
/// (`Box<dyn Transport>`). Each implementation bounds its own waits (connect and write
/// timeouts); only [`recv_ack`](Transport::recv_ack) takes a timeout from the caller.
///
/// # Session contract
/// 1. [`hello`](Transport::hello) (re)connects and opens a session. Anything in flight from an
///    earlier session is void: acknowledgements from it must never be returned afterwards.
///    The replica may refuse with [`crate::Error::StaleEpoch`] or [`crate::Error::Diverged`];
///    network trouble is [`crate::Error::Transport`].
/// 2. [`send_records`](Transport::send_records) pipelines records (ascending LSNs, usually
///    contiguous) without waiting for the replica to apply them. The worker keeps at most a
///    window of records unacknowledged.
/// 3. For every record sent, exactly one [`Ack`] comes back through
///    [`recv_ack`](Transport::recv_ack), in the order the replica processed them (cumulative:
///    "applied up to LSN n"). A record lost on the way yields no ack: the worker notices by a
///    `recv_ack` timeout and starts a new session with `hello`. A replica may apply the records
///    of one `send_records` call together ([`crate::ReplicaEndpoint::apply_many`], one commit
///    group); their acks then all carry the applied LSN after that window.
/// 4. [`send_snapshot_chunk`](Transport::send_snapshot_chunk) is request/response: it sends one
///    chunk of a full resync and returns the replica's [`SnapshotAck`]. It is never called
///    while records are unacknowledged.
///
/// Any `Err` other than a refusal ends the session: the worker will call `hello` again before
/// anything else.
pub trait Transport: Send {
    /// Names the replica (an address or a label), for logs, metrics and WAL retention.
    fn describe(&self) -> String;

    /// Connects if needed and opens a session; returns the replica's applied LSN and epoch.
    fn hello(&mut self, hello: &Hello) -> Result<HelloReply>;

    /// Sends `records` (ascending LSNs) without waiting for them to be applied. An empty slice
    /// sends nothing and returns `Ok(())`.
    fn send_records(&mut self, records: &[SharedRecord]) -> Result<()>;

    /// Sends a window like [`send_records`](Transport::send_records), handing the records
    /// over: a transport that applies them in memory can take a record no one else holds
    /// without copying it. The default borrows them for `send_records`; the worker calls this.
    fn send_window(&mut self, records: Vec<SharedRecord>) -> Result<()> {
        self.send_records(&records)
    }

    /// Waits up to `timeout` for the next acknowledgement; `Ok(None)` when none arrived in
    /// time (the session stays open).
    fn recv_ack(&mut self, timeout: Duration) -> Result<Option<Ack>>;

    /// Waits up to `timeout` for the next acknowledgement and appends it to `acks` together
    /// with every later one that has already arrived, in order, so the worker books a window
    /// of acks at once. Appends nothing when none arrived in time (the session stays open).
    /// An error that follows acks already appended may be returned by the next call instead.
    /// The default takes one ack with [`recv_ack`](Transport::recv_ack).
    fn recv_acks(&mut self, timeout: Duration, acks: &mut Vec<Ack>) -> Result<()> {
        if let Some(ack) = self.recv_ack(timeout)? {
            acks.push(ack);
        }
        Ok(())
    }

    /// Sends one snapshot chunk and waits for the replica's answer.
    fn send_snapshot_chunk(&mut self, chunk: &SnapshotChunk) -> Result<SnapshotAck>;

    /// Ends the session (closing the connection). The next call must be `hello`.
    fn close(&mut self) {}

    /// A handle with which another thread ends, at once and for good, whatever call this
    /// transport is blocked in and every later one: a closing [`Replicator`] uses it once its
    /// shutdown timeout has passed, so that a stalled replica (a link that takes bytes and
    /// answers nothing) does not hold it up for the transport's own I/O timeouts. `None`, the
    /// default, for a transport whose calls end soon on their own.
    ///
    /// [`Replicator`]: crate::Replicator
    fn interrupter(&self) -> Option<Interrupter> {
        None
    }
}

/// Ends a transport's calls from another thread (see [`Transport::interrupter`]).
pub type Interrupter = Box<dyn Fn() + Send + Sync>;

/// A boxed transport, as the replicator's builder takes them.
pub type BoxedTransport = Box<dyn Transport>;

/// Default bound on a single `recv_ack` wait before the worker treats the session as broken.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
