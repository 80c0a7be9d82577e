//! The active segment and the group-commit queue.
//!
//! Writers encode their record on their own thread and enqueue it. The first writer to find
//! no leader becomes the leader: it takes every queued record, stamps LSNs, writes them with
//! one `write` and (under `SyncPolicy::Always`) one `fdatasync`, publishes them to the index,
//! and hands each waiter its result. Writers that arrived meanwhile form the next group.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// File size: bytes past `len` are preallocated zeros.
    pub allocated: u64,
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
    /// A leader is waiting for more writers to join its group.
    gathering: bool,
    next_ticket: u64,
    results: HashMap<u64, Result<Outcome>>,
    /// Size of the previous group: how many writers are active.
    last_group_len: usize,
}

/// Serialises commits into groups.
#[derive(Default)]
pub(crate) struct CommitQueue {
    queue: Mutex<Queue>,
    done: Condvar,
    arrived: Condvar,
}

impl CommitQueue {
    /// Commits `record`, leading a group with `lead` when no other writer is leading.
    ///
    /// `lead` receives the group in arrival order and returns one result per record, in order.
    ///
    /// With a `gather` window (durable commits), a new leader whose previous group held
    /// several writers waits up to that long for as many to queue again before it takes the
    /// group. Without it, writers that were synced together come back a few microseconds
    /// apart, the first one leads alone, and groups split into ever smaller halves; with it,
    /// N concurrent writers share one fsync (PostgreSQL's `commit_delay` / `commit_siblings`).
    /// A lone writer never waits.
    pub fn commit(
        &self,
        record: EncodedRecord,
        rule: LsnRule,
        gather: Option<Duration>,
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
        if q.gathering {
            self.arrived.notify_one();
        }
        loop {
            if let Some(result) = q.results.remove(&ticket) {
                return result;
            }
            if q.leader_active {
                self.done.wait(&mut q);
                continue;
            }
            q.leader_active = true;
            if let Some(window) = gather {
                let target = q.last_group_len;
                if target > 1 && q.waiting.len() < target {
                    let deadline = Instant::now() + window;
                    q.gathering = true;
                    while q.waiting.len() < target {
                        if self.arrived.wait_until(&mut q, deadline).timed_out() {
                            break;
                        }
                    }
                    q.gathering = false;
                }
            }
            let group = std::mem::take(&mut q.waiting);
            q.last_group_len = group.len();
            drop(q);
            let results = lead(group);
            q = self.queue.lock();
            q.results.extend(results);
            q.leader_active = false;
            self.done.notify_all();
            if let Some(result) = q.results.remove(&ticket) {
                return result;
            }
            if !q.waiting.iter().any(|p| p.ticket == ticket) {
                // The group held this record but its leader gave no answer: never wait
                // for one that cannot come.
                return Err(crate::Error::Poisoned {
                    reason: "internal: the commit leader returned no result for a write".into(),
                });
            }
        }
    }
}
