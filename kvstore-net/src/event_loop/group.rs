//! [`Group`]: the writes an event loop gathered from all its ready connections in one round,
//! committed together with [`kvstore_core::KvStore::write_batches`]: each connection's batch
//! is its own record, and all share one write and, under `--fsync always`, one `fdatasync`
//! (as Redis fsyncs once per event-loop iteration, before it sleeps).

use kvstore_core::WriteBatch;

use crate::cmd::{readonly, store_error};
use crate::frame::Frame;
use crate::node::Node;
use crate::stats::ServerStats;

/// Writes waiting for the round's commit, with whom to answer.
#[derive(Default)]
pub(super) struct Group {
    /// Per batch: the connection's token and how many requests the batch holds (each gets
    /// the batch's reply).
    members: Vec<(usize, usize)>,
    batches: Vec<WriteBatch>,
}

impl Group {
    /// Adds the batch of `requests` requests of connection `token`.
    pub(super) fn add(&mut self, token: usize, requests: usize, batch: WriteBatch) {
        self.members.push((token, requests));
        self.batches.push(batch);
    }

    /// Whether no write is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Commits every batch as one group; returns, per batch in the order added, the
    /// connection's token, its request count and the reply each of those requests gets.
    pub(super) fn commit(&mut self, node: &Node) -> Vec<(usize, usize, Frame)> {
        let members = std::mem::take(&mut self.members);
        let replies = commit_batches(node, std::mem::take(&mut self.batches));
        members
            .into_iter()
            .zip(replies)
            .map(|((token, requests), reply)| {
                if matches!(reply, Frame::Error(_)) {
                    ServerStats::add(&node.stats.error_replies, requests as u64);
                }
                (token, requests, reply)
            })
            .collect()
    }
}

/// One reply per batch: `+OK`, or the error that batch (or the whole group) met.
fn commit_batches(node: &Node, batches: Vec<WriteBatch>) -> Vec<Frame> {
    let count = batches.len();
    // Held until the group committed, so a concurrent REPLICAOF cannot demote the node
    // between the check and the commit (see `cmd::dispatch`).
    let role = node.role.read_recursive();
    if role.is_replica() {
        return vec![readonly(); count];
    }
    match node.store.write_batches(batches) {
        Ok(results) => {
            let mut replies: Vec<Frame> = results
                .into_iter()
                .map(|result| match result {
                    Ok(_) => Frame::ok(),
                    Err(e) => store_error(e),
                })
                .collect();
            // The engine answers every batch; should it not, no request goes unanswered.
            replies.resize_with(count, || {
                Frame::error("ERR internal: the commit group lost a reply")
            });
            replies
        }
        Err(e) => vec![store_error(e); count],
    }
}
