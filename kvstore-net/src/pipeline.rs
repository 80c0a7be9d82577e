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

use kvstore_core::{Op, WriteBatch, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES};

use crate::cmd::{store_error, Session};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;
use crate::stats::ServerStats;

/// Most requests committed as one batch.
pub(crate) const MAX_COALESCED_REQUESTS: usize = 1024;
/// Most key and value bytes committed as one batch.
pub(crate) const MAX_COALESCED_BYTES: usize = 4 << 20;

/// Whether `request` is a `SET k v` / `PUT k v` that may join a batch on this session.
pub(crate) fn coalescible(request: &Request, session: &Session, node: &Node) -> bool {
    match request.as_slice() {
        [name, key, value] => {
            (name.eq_ignore_ascii_case(b"SET") || name.eq_ignore_ascii_case(b"PUT"))
                && session.authenticated
                && key.len() <= MAX_KEY_BYTES
                && value.len() <= DEFAULT_MAX_VALUE_BYTES
                && !node.is_replica()
        }
        _ => false,
    }
}

/// Bytes a request adds to a batch.
pub(crate) fn payload_bytes(request: &Request) -> usize {
    request.iter().skip(1).map(Vec::len).sum()
}

/// Commits `requests` (all [`coalescible`]) as one batch; returns the reply shared by all.
pub(crate) fn commit(requests: Vec<Request>, node: &Node) -> Frame {
    ServerStats::add(&node.stats.commands_processed, requests.len() as u64);
    let ops: Vec<Op> = requests
        .into_iter()
        .filter_map(|request| {
            let mut args = request.into_iter().skip(1);
            Some(Op::Put {
                key: args.next()?,
                value: args.next()?,
            })
        })
        .collect();
    match node.store.write_batch(WriteBatch::from(ops)) {
        Ok(_) => Frame::ok(),
        Err(e) => store_error(e),
    }
}
