//! Commands that read before they write (`INCR`, `SETNX`, `SET … NX|XX|GET`, `GETSET`,
//! `GETDEL`, `APPEND`, `MSETNX`) and `EXEC`'s queue run in isolation: under the node's write
//! gate held exclusively, so no other write lands between their reads and their commit, on
//! a [`View`] of the committed data plus their own writes, which are committed as one batch
//! before any reply goes out. Outside a transaction such a command is a transaction of one.

use super::view::View;
use super::{resolve, store_error, Args, Ctx, Session};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;

/// The read-modify-write commands (besides `SET` with options).
pub(super) const COMMANDS: &[&str] = &[
    "incr", "decr", "incrby", "decrby", "setnx", "msetnx", "getset", "getdel", "append",
];

/// Runs one read-modify-write command in isolation.
pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let request = args.request();
    let node: &Node = ctx.node;
    // The role first, then the gate: the order every writer takes them in.
    let role = node.role.read_recursive();
    let _isolated = node.write_gate.write();
    let mut replies = run_queue(
        std::slice::from_ref(request),
        role.is_replica(),
        node,
        ctx.session,
    )?;
    Ok(replies
        .pop()
        .unwrap_or_else(|| Frame::error("ERR internal: no reply")))
}

/// Runs `requests` in order on one view and commits their writes as one batch; returns each
/// one's reply (a command's error is its reply), or the commit's error. The caller holds the
/// write gate exclusively.
pub(super) fn run_queue(
    requests: &[Request],
    replica: bool,
    node: &Node,
    session: &Session,
) -> Result<Vec<Frame>, Frame> {
    let mut view = View::new(&node.store, replica);
    let mut replies = Vec::with_capacity(requests.len());
    for request in requests {
        let reply = match resolve(request, session) {
            Ok((spec, mut args)) => view.run(spec, &mut args, node).unwrap_or_else(|e| e),
            Err(reply) => reply,
        };
        replies.push(reply);
    }
    let batch = view.into_batch();
    if !batch.is_empty() {
        node.store.write_batch(batch).map_err(store_error)?;
    }
    Ok(replies)
}
