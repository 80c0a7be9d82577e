//! [`Group`]: the writes an event loop gathered from all its ready connections in one round,
//! committed together with [`kvstore_core::KvStore::write_batches`]: each connection's batch
//! is its own record, and all share one write and, under `--fsync always`, one `fdatasync`
//! (as Redis fsyncs once per event-loop iteration, before it sleeps).
//!
//! Writes whose batch and reply depend on the data (a `DEL`'s count, `INCR`, `SETNX`, `SET …
//! NX` and the other commands that read before they write) are planned at the commit, with
//! the node's write gate held exclusively, member by member in the group's order on a view
//! of the store plus the group's earlier writes (`cmd::isolated::GroupPlanner`): a write
//! committed meanwhile elsewhere (another event loop, a thread, an `EXEC`) would otherwise
//! make them stale, and two `DEL`s of one key could both count it. So 50 clients' `INCR`s
//! of one counter share one commit and one `fdatasync`, as their `SET`s do. (A `DEL` of a
//! key some batch in the group writes still waits for the group, [`Group::wait`], as it did
//! before DELs were planned at the commit; [`Group::touches`] says when, with a key index
//! built only once a `DEL` asks, so rounds of `SET`s pay nothing.)

use std::collections::HashSet;

use kvstore_core::WriteBatch;

use crate::cmd::isolated::GroupPlanner;
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;
use crate::pipeline::{self, GateHold};
use crate::stats::ServerStats;

/// Bytes after which a row of planned members ends its shared record (the next member
/// starts another): one member writes at most a value or a request's worth, so a row's
/// record stays far below `kvstore_core::MAX_RECORD_BYTES`.
const MAX_RUN_BYTES: usize = 16 << 20;

/// A member of the group planned at the commit.
enum Planned {
    /// A `DEL` of these keys.
    Delete(Vec<Vec<u8>>),
    /// A command that reads before it writes.
    Isolated(Request),
}

/// Writes waiting for the round's commit, with whom to answer.
#[derive(Default)]
pub(super) struct Group {
    /// Per batch: the connection's token, how many requests the batch holds, and the reply
    /// each of them gets if the batch commits.
    members: Vec<(usize, usize, Frame)>,
    batches: Vec<WriteBatch>,
    /// Per batch, what is planned at the commit, if anything: its batch and reply then.
    planned: Vec<Option<Planned>>,
    /// Connections that wait for this group to commit before their next request runs.
    waiters: Vec<usize>,
    /// Every key the batches write, once [`Group::touches`] needed it.
    keys: Option<HashSet<Vec<u8>>>,
}

/// What a commit gives a connection of the group.
pub(super) struct Answer {
    /// The connection.
    pub token: usize,
    /// The reply each of its requests gets, and how many requests get it (all of a batch get
    /// the same one); `None` for a connection that only waited.
    pub replies: Option<(Frame, usize)>,
}

impl Group {
    /// Adds the batch of `requests` requests of connection `token`; each gets `reply` once
    /// the batch committed.
    pub(super) fn add(&mut self, token: usize, requests: usize, batch: WriteBatch, reply: Frame) {
        if let Some(keys) = self.keys.as_mut() {
            keys.extend(batch.ops().map(|op| op.key().to_vec()));
        }
        self.members.push((token, requests, reply));
        self.batches.push(batch);
        self.planned.push(None);
    }

    /// Adds connection `token`'s `DEL` of `keys`, planned when the group commits.
    pub(super) fn add_delete(&mut self, token: usize, keys: Vec<Vec<u8>>) {
        if let Some(index) = self.keys.as_mut() {
            index.extend(keys.iter().cloned());
        }
        self.members.push((token, 1, Frame::Integer(0)));
        self.batches.push(WriteBatch::new());
        self.planned.push(Some(Planned::Delete(keys)));
    }

    /// Adds connection `token`'s command that reads before it writes (`INCR` and the like,
    /// checked already), planned when the group commits. Its keys stay out of
    /// [`Group::touches`]: what is planned after it sees its writes.
    pub(super) fn add_isolated(&mut self, token: usize, request: Request) {
        self.members.push((token, 1, Frame::Null));
        self.batches.push(WriteBatch::new());
        self.planned.push(Some(Planned::Isolated(request)));
    }

    /// Makes connection `token` wait for this group's commit without adding a write.
    pub(super) fn wait(&mut self, token: usize) {
        self.waiters.push(token);
    }

    /// Whether any batch in the group writes one of `keys`.
    pub(super) fn touches<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>) -> bool {
        let mut keys = keys.peekable();
        if self.batches.is_empty() || keys.peek().is_none() {
            return false;
        }
        let (batches, planned) = (&self.batches, &self.planned);
        let index = self.keys.get_or_insert_with(|| {
            let written = batches.iter().flat_map(|b| b.ops().map(|op| op.key()));
            let deleted = planned
                .iter()
                .flat_map(|p| match p {
                    Some(Planned::Delete(keys)) => keys.as_slice(),
                    _ => &[],
                })
                .map(Vec::as_slice);
            written.chain(deleted).map(<[u8]>::to_vec).collect()
        });
        keys.any(|key| index.contains(key))
    }

    /// Whether any write waits in the group for its commit.
    pub(super) fn has_writes(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Whether no connection waits on the group.
    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.waiters.is_empty()
    }

    /// Commits every batch as one group; returns, per batch in the order added, the
    /// connection and the replies of its requests, then the connections that only waited.
    pub(super) fn commit(&mut self, node: &Node) -> Vec<Answer> {
        self.keys = None;
        // The engine takes the batches; the next round's list starts at this one's size.
        let capacity = self.batches.len();
        let mut batches = std::mem::replace(&mut self.batches, Vec::with_capacity(capacity));
        let planned = std::mem::take(&mut self.planned);
        let count = batches.len();
        // Which batch carries each member's writes (its own, or its run's: see below), and
        // whether its reply is final before the commit: an error answered when checked or
        // planned writes nothing, stands whatever the commit meets, and was counted then.
        let mut carrier: Vec<usize> = (0..count).collect();
        let mut settled = vec![false; count];
        let outcomes = if planned.iter().any(Option::is_some) {
            let (members, carrier, settled) = (&mut self.members, &mut carrier, &mut settled);
            pipeline::commit_group(node, GateHold::Exclusive, |replica| {
                let mut planner = GroupPlanner::new(node, replica);
                // Planned members in a row (a connection's pipelined INCRs, the next
                // connection's) write one batch together, each key once: one record instead
                // of one each. A blind batch between them ends the row, to keep the order.
                let mut run: Option<usize> = None;
                for i in 0..count {
                    match &planned[i] {
                        None => {
                            if let Some(first) = run.take() {
                                batches[first] = planner.take_batch();
                            }
                            if let Err(error) = planner.blind(&batches[i]) {
                                ServerStats::add(&node.stats.error_replies, 1);
                                batches[i] = WriteBatch::new();
                                members[i].2 = error;
                            }
                        }
                        Some(plan) => {
                            let first = *run.get_or_insert(i);
                            carrier[i] = first;
                            members[i].2 = match plan {
                                Planned::Delete(keys) => planner.delete(keys),
                                Planned::Isolated(request) => planner.isolated(request),
                            };
                            // A row's record stays far below the engine's record limit,
                            // which would refuse the whole row at the commit.
                            if planner.pending_bytes() >= MAX_RUN_BYTES {
                                batches[first] = planner.take_batch();
                                run = None;
                            }
                        }
                    }
                    settled[i] = matches!(members[i].2, Frame::Error(_))
                        && (planned[i].is_some() || batches[i].is_empty());
                }
                if let Some(first) = run {
                    batches[first] = planner.take_batch();
                }
                batches
            })
        } else {
            for (i, (member, batch)) in self.members.iter().zip(&batches).enumerate() {
                settled[i] = batch.is_empty() && matches!(member.2, Frame::Error(_));
            }
            pipeline::commit_batches(node, batches)
        };
        let mut answers: Vec<Answer> = self
            .members
            .drain(..)
            .enumerate()
            .map(|(i, (token, requests, success))| {
                let outcome = carrier.get(i).and_then(|c| outcomes.get(*c));
                let reply = match outcome {
                    Some(Ok(())) => success,
                    _ if settled[i] => success,
                    Some(Err(error)) => {
                        ServerStats::add(&node.stats.error_replies, requests as u64);
                        error.clone()
                    }
                    None => Frame::error("ERR internal: the commit group lost a reply"),
                };
                Answer {
                    token,
                    replies: Some((reply, requests)),
                }
            })
            .collect();
        answers.extend(self.waiters.drain(..).map(|token| Answer {
            token,
            replies: None,
        }));
        answers
    }
}
