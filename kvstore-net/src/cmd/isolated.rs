//! Commands that read before they write (`INCR`, `SETNX`, `SET … NX|XX|GET`, `GETSET`,
//! `GETDEL`, `APPEND`, `MSETNX`) and `EXEC`'s queue run in isolation: under the node's write
//! gate held exclusively, so no other write lands between their reads and their commit, on
//! a [`View`] of the committed data plus their own writes, which are committed as one batch
//! before any reply goes out. Outside a transaction such a command is a transaction of one.

use kvstore_core::{Replicating, WriteBatch};

use super::view::View;
use super::{del, lookup, resolve, store_error, Args, Ctx, Session};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;
use crate::stats::ServerStats;

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
    let (mut replies, replicating) = {
        let _isolated = node.write_gate.write();
        run_queue(
            std::slice::from_ref(request),
            role.is_replica(),
            node,
            ctx.session,
        )?
    };
    wait_replicated(replicating)?;
    Ok(replies
        .pop()
        .unwrap_or_else(|| Frame::error("ERR internal: no reply")))
}

/// Waits for a write committed under the write gate to be replicated as the mode requires,
/// once the gate is let go: waited for under it, concurrent writers waited out each other's
/// sync-mode timeout one after the other.
pub(super) fn wait_replicated(replicating: Option<Replicating>) -> Result<(), Frame> {
    match replicating {
        Some(replicating) => replicating.wait().map(drop).map_err(store_error),
        None => Ok(()),
    }
}

/// Runs `requests` in order on one view and commits their writes as one batch; returns each
/// one's reply (a command's error is its reply) and the commit's replication to wait for
/// once the gate is let go ([`wait_replicated`]), or the commit's error. The caller holds the
/// write gate exclusively.
pub(super) fn run_queue(
    requests: &[Request],
    replica: bool,
    node: &Node,
    session: &Session,
) -> Result<(Vec<Frame>, Option<Replicating>), Frame> {
    let mut view = View::new(&node.store, replica);
    let mut replies = Vec::with_capacity(requests.len());
    for request in requests {
        let reply = match resolve(request, session) {
            Ok((spec, mut args)) => view.run(spec, &mut args, node).unwrap_or_else(|e| e),
            Err(reply) => reply,
        };
        replies.push(reply);
    }
    let batch = view.take_batch();
    let replicating = if batch.is_empty() {
        None
    } else {
        Some(
            node.store
                .write_batch_then_wait(batch)
                .map_err(store_error)?,
        )
    };
    Ok((replies, replicating))
}

/// Plans an event loop's commit group that holds writes which depend on the data (a `DEL`'s
/// count, `INCR` and the like): member by member in the group's order, each on a view of
/// the store plus the group's earlier writes, so that the group commits as if its members
/// had run one after the other, and 50 clients' `INCR`s share one commit (and one
/// `fdatasync`) as their `SET`s do. The caller holds the write gate exclusively from the
/// planning to the commit.
pub(crate) struct GroupPlanner<'a> {
    view: View<'a>,
    node: &'a Node,
}

impl<'a> GroupPlanner<'a> {
    pub(crate) fn new(node: &'a Node, replica: bool) -> Self {
        GroupPlanner {
            view: View::new(&node.store, replica),
            node,
        }
    }

    /// A blind write of the group (plain `SET`s): committed as it is, and later members see
    /// it; one the store would refuse (a key or value too large) is refused here, unseen.
    pub(crate) fn blind(&mut self, batch: &WriteBatch) -> Result<(), Frame> {
        self.view.note_written(batch.ops())
    }

    /// A `DEL` of `keys`: its count; its deletes (each key that has a value, once) go to the
    /// batch [`GroupPlanner::take_batch`] returns.
    pub(crate) fn delete(&mut self, keys: &[Vec<u8>]) -> Frame {
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let reply = del::check_lone_key(&keys).and_then(|()| self.view.delete(&keys));
        self.answer(reply)
    }

    /// A command that reads before it writes (already checked: known, authenticated, arity):
    /// its reply; its writes go to the batch [`GroupPlanner::take_batch`] returns.
    pub(crate) fn isolated(&mut self, request: &Request) -> Frame {
        let Some(spec) = request.get(0).and_then(lookup) else {
            return self.answer(Err(Frame::error("ERR internal: unknown command planned")));
        };
        self.view.new_reply();
        let reply = self.view.run(spec, &mut Args::new(request), self.node);
        self.answer(reply)
    }

    /// The member's reply; an error reply is counted, as `execute` counts one (a command
    /// refused wrote nothing: its errors come before its writes).
    fn answer(&mut self, reply: Result<Frame, Frame>) -> Frame {
        let reply = reply.unwrap_or_else(|error| error);
        if matches!(reply, Frame::Error(_)) {
            ServerStats::add(&self.node.stats.error_replies, 1);
        }
        reply
    }

    /// Bytes planned since the last [`GroupPlanner::take_batch`] (at least its batch's).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.view.pending_bytes()
    }

    /// The writes planned since the last call (each key's final state) as one batch.
    pub(crate) fn take_batch(&mut self) -> WriteBatch {
        self.view.take_batch()
    }
}
