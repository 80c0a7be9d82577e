//! Coalescing of pipelined writes: consecutive plain `SET`/`PUT` requests that already sit in
//! one connection's read buffer are committed as one write batch (one log record, one commit
//! instead of one per request), then each gets its `+OK`.
//!
//! The client cannot tell the difference: replies come in order and only after the batch is
//! durable (and replicated) per the server's policy; a batch is atomic, which is stronger than
//! what the client asked for; a later `SET` of the same key in the batch still wins. Every
//! request that could fail on its own (an oversized key or value, a replica's refusal, a
//! missing `AUTH`) is left out and runs by itself, so the errors a batch can meet (I/O,
//! quorum, too few replicas) are the same for each of its requests, and each gets that error.

use kvstore_core::{Replicating, WriteBatch, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES};

use std::io;

use crate::cmd::{store_error, Session};
use crate::connection::Connection;
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::{ProtocolError, Request};
use crate::stats::ServerStats;

/// Most requests committed as one batch.
pub(crate) const MAX_COALESCED_REQUESTS: usize = 1024;
/// Most key and value bytes committed as one batch.
pub(crate) const MAX_COALESCED_BYTES: usize = 4 << 20;

/// Whether `request` is a `SET k v` / `PUT k v` that may join a batch on this session.
pub(crate) fn coalescible(request: &Request, session: &Session, node: &Node) -> bool {
    match (
        request.len(),
        request.get(0),
        request.get(1),
        request.get(2),
    ) {
        (3, Some(name), Some(key), Some(value)) => {
            (name.eq_ignore_ascii_case(b"SET") || name.eq_ignore_ascii_case(b"PUT"))
                && session.authenticated
                && key.len() <= MAX_KEY_BYTES
                && value.len() <= DEFAULT_MAX_VALUE_BYTES
                && session.transaction.is_none()
                && !node.is_replica()
        }
        _ => false,
    }
}

/// Bytes a request adds to a batch.
pub(crate) fn payload_bytes(request: &Request) -> usize {
    request.arg_bytes() - request.get(0).map_or(0, <[u8]>::len)
}

/// Where [`collect`] takes requests from: a connection's buffer, and the socket behind it.
pub(crate) trait RequestSource {
    /// Decodes a request already in the buffer into `request`, replacing what it held:
    /// whether there was a whole one.
    fn buffered_request(&mut self, request: &mut Request) -> Result<bool, ProtocolError>;
    /// Reads what has already arrived on the socket without waiting, while fewer than
    /// `max_buffered` bytes are buffered; the bytes read (0: nothing was waiting).
    fn read_available(&mut self, max_buffered: usize) -> io::Result<usize>;
}

impl RequestSource for Connection {
    fn buffered_request(&mut self, request: &mut Request) -> Result<bool, ProtocolError> {
        Connection::buffered_request_into(self, request)
    }

    fn read_available(&mut self, max_buffered: usize) -> io::Result<usize> {
        Connection::read_available(self, max_buffered)
    }
}

/// A run of requests that may be committed together, and what ended it.
pub(crate) struct Run {
    /// How many requests were taken: `first` and the buffered ones after it that `admits`
    /// took.
    pub count: usize,
    /// The buffered request that ended the run, to be run next on its own.
    pub next: Option<Request>,
    /// A protocol error met after the run (reply with it once the run's replies are queued).
    pub broken: Option<ProtocolError>,
}

/// How `collect` may use the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAhead {
    /// Only requests already in the read buffer join the run.
    BufferOnly,
    /// Bytes that have already arrived on the socket are read (without waiting) when the
    /// buffer runs out, so the run holds all the peer has sent. One extra non-blocking read
    /// per run: worth it where a run costs an fsync (a replica's window).
    Arrived,
}

/// Passes `first` and every following request that `admits` to `take`, in order, up to
/// [`MAX_COALESCED_REQUESTS`] requests and [`MAX_COALESCED_BYTES`]: those in `source`'s buffer
/// and, with [`ReadAhead::Arrived`], those that have already arrived. Never waits for a
/// request the client has not sent. `take` may move a request out (`std::mem::take`) or
/// only copy what it needs: the next request is decoded into whatever buffers it leaves, so
/// a run that copies allocates nothing per request.
pub(crate) fn collect(
    source: &mut impl RequestSource,
    first: Request,
    read_ahead: ReadAhead,
    admits: impl Fn(&Request) -> bool,
    mut take: impl FnMut(&mut Request),
) -> Run {
    let mut request = first;
    let mut bytes = payload_bytes(&request);
    take(&mut request);
    let mut run = Run {
        count: 1,
        next: None,
        broken: None,
    };
    while run.count < MAX_COALESCED_REQUESTS && bytes < MAX_COALESCED_BYTES {
        match source.buffered_request(&mut request) {
            Ok(true) if admits(&request) => {
                bytes += payload_bytes(&request);
                take(&mut request);
                run.count += 1;
            }
            Ok(true) => {
                run.next = Some(request);
                break;
            }
            Ok(false) if read_ahead == ReadAhead::Arrived => {
                // A read error is not lost: the connection's next blocking read meets it.
                match source.read_available(MAX_COALESCED_BYTES) {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
            Ok(false) => break,
            Err(err) => {
                run.broken = Some(err);
                break;
            }
        }
    }
    run
}

/// Adds the put of a [`coalescible`] request to `batch` (copied straight from the request's
/// buffer into the batch's record).
pub(crate) fn add_put(batch: &mut WriteBatch, request: &Request) {
    batch.put(
        request.get(1).unwrap_or_default(),
        request.get(2).unwrap_or_default(),
    );
}

/// Commits `batch` (the puts of [`coalescible`] requests, one each) as one record; returns
/// the reply shared by all.
pub(crate) fn commit(batch: WriteBatch, node: &Node) -> Frame {
    ServerStats::add(&node.stats.commands_processed, batch.len() as u64);
    match commit_batches(node, vec![batch]).pop() {
        Some(Ok(())) => Frame::ok(),
        Some(Err(reply)) => reply,
        None => Frame::error("ERR internal: the commit group lost a reply"),
    }
}

/// Commits `batches` as one group (`KvStore::write_batches`) while holding the role: one
/// outcome per batch, committed or the error reply that batch (or the whole group) met.
/// Shared by the event loop's round group and a thread's run of pipelined `SET`s.
pub(crate) fn commit_batches(node: &Node, batches: Vec<WriteBatch>) -> Vec<Result<(), Frame>> {
    commit_group(node, GateHold::Shared, |_| batches)
}

/// How a commit holds the node's write gate (`Node::write_gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateHold {
    /// Blind writes: they commit beside each other.
    Shared,
    /// Writes planned from the data (a `DEL`'s count, an `INCR`'s value): nothing else
    /// commits between the plan and the commit.
    Exclusive,
}

/// Commits the batches `plan` returns, planned once the role and the write gate are held (as
/// `hold` says), so that batches that depend on the data (a `DEL`'s, an `INCR`'s) see what
/// they commit over; `plan` is told whether the node is a replica (its writes are refused).
/// One outcome per batch, as [`commit_batches`].
pub(crate) fn commit_group(
    node: &Node,
    hold: GateHold,
    plan: impl FnOnce(bool) -> Vec<WriteBatch>,
) -> Vec<Result<(), Frame>> {
    // Held until the group committed, so a concurrent REPLICAOF cannot demote the node
    // between the check and the commit (see `cmd::dispatch`); then the gate, as every writer
    // takes them.
    let role = node.role.read_recursive();
    let committed = match hold {
        GateHold::Shared => {
            let _gate = node.write_gate.read();
            commit_planned(node, role.is_replica(), plan(role.is_replica()))
        }
        GateHold::Exclusive => {
            let _gate = node.write_gate.write();
            commit_planned(node, role.is_replica(), plan(role.is_replica()))
        }
    };
    // Replicas are waited for once the gate is let go: held (even shared) through a
    // sync-mode quorum wait, it made every writer that takes it exclusively wait out this
    // group's timeout before its own.
    committed.wait()
}

/// A group committed here, and the replication still to wait for.
struct Committed {
    outcomes: Vec<Result<(), Frame>>,
    replicating: Option<Replicating>,
}

impl Committed {
    /// The outcomes once replicated as the mode requires: a replication failure (a quorum
    /// not reached) is every batch's answer, as `KvStore::write_batches` gives it.
    fn wait(self) -> Vec<Result<(), Frame>> {
        match self.replicating.map(Replicating::wait) {
            Some(Err(e)) => vec![Err(store_error(e)); self.outcomes.len()],
            _ => self.outcomes,
        }
    }
}

fn commit_planned(node: &Node, replica: bool, batches: Vec<WriteBatch>) -> Committed {
    let count = batches.len();
    let refused = |outcomes| Committed {
        outcomes,
        replicating: None,
    };
    if count == 0 {
        return refused(Vec::new());
    }
    if replica {
        return refused(vec![Err(crate::cmd::readonly()); count]);
    }
    match node.store.write_batches_then_wait(batches) {
        Ok((results, replicating)) => {
            let mut outcomes: Vec<Result<(), Frame>> = results
                .into_iter()
                .map(|result| result.map(|_| ()).map_err(store_error))
                .collect();
            // The engine answers every batch; should it not, no request goes unanswered.
            outcomes.resize_with(count, || {
                Err(Frame::error("ERR internal: the commit group lost a reply"))
            });
            Committed {
                outcomes,
                replicating: Some(replicating),
            }
        }
        Err(e) => refused(vec![Err(store_error(e)); count]),
    }
}
