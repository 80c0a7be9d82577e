//! The active segment and the group-commit queue.
//!
//! Writers encode their record on their own thread and enqueue it. The first writer to find
//! no leader becomes the leader: it takes every queued record, stamps LSNs, writes them with
//! one `write` and (under `SyncPolicy::Always`) one `fdatasync`, publishes them to the index,
//! and hands each waiter its result. Writers that arrived meanwhile form the next group.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::io::FileIo;
use crate::wal::record::EncodedRecord;
use crate::wal::segment::SegmentId;
use crate::Lsn;

/// The segment new records are appended to. Only the commit leader writes it.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub id: SegmentId,
    pub file: Arc<dyn FileIo>,
    /// Offset of the next record.
    pub len: u64,
    /// Bytes written since the last sync.
    pub unsynced: bool,
    /// LSN of the newest record written to the log (maybe not yet published).
    pub written_lsn: Lsn,
}

/// Which LSN a queued record takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LsnRule {
    /// The next one (a local write).
    Next,
    /// Exactly this one (a replicated write): lower is a duplicate, higher is a gap.
    Exactly(Lsn),
}

/// How a queued record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed(Lsn),
    /// A replicated record at or below the applied LSN: nothing was written.
    Duplicate,
}

/// A record waiting to be committed.
#[derive(Debug)]
pub(crate) struct Pending {
    pub ticket: u64,
    pub record: EncodedRecord,
    pub rule: LsnRule,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    leader_active: bool,
    next_ticket: u64,
    results: HashMap<u64, Result<Outcome>>,
}

/// Serialises commits into groups.
#[derive(Default)]
pub(crate) struct CommitQueue {
    queue: Mutex<Queue>,
    done: Condvar,
}

impl CommitQueue {
    /// Commits `record`, leading a group with `lead` when no other writer is leading.
    ///
    /// `lead` receives the group in arrival order and returns one result per record, in order.
    pub fn commit(
        &self,
        record: EncodedRecord,
        rule: LsnRule,
        lead: impl Fn(Vec<Pending>) -> Vec<(u64, Result<Outcome>)>,
    ) -> Result<Outcome> {
        let mut q = self.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push(Pending {
            ticket,
            record,
            rule,
        });
        loop {
            if let Some(result) = q.results.remove(&ticket) {
                return result;
            }
            if q.leader_active {
                self.done.wait(&mut q);
                continue;
            }
            q.leader_active = true;
            let group = std::mem::take(&mut q.waiting);
            drop(q);
            let results = lead(group);
            q = self.queue.lock();
            q.results.extend(results);
            q.leader_active = false;
            self.done.notify_all();
        }
    }
}
