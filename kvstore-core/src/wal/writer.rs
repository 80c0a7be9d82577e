//! The active segment and the group-commit queue.
//!
//! Writers encode their record on their own thread and enqueue it. The first writer to find
//! no leader becomes the leader: it takes every queued record, stamps LSNs, writes them with
//! one `write` and (under `SyncPolicy::Always`) one `fdatasync`, publishes them to the index,
//! and hands each waiter its result. Writers that arrived meanwhile form the next group.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::thread::{self, Thread};

use crate::error::Result;
use crate::io::FileIo;
use crate::wal::hint::HintBuilder;
use crate::wal::record::EncodedRecord;
use crate::wal::segment::SegmentId;
use crate::wal::segment::{SegmentHeader, SEGMENT_HEADER_BYTES};
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
    /// The segment's hint file, built as records are written.
    pub hint: HintBuilder,
    /// The salt of its records' header checksums.
    pub salt: u32,
}

impl ActiveSegment {
    /// A segment just created with `header` (written and synced) in `file`, holding no
    /// record yet; its first record will follow LSN `header.lsn_mark`.
    pub fn fresh(file: Arc<dyn FileIo>, header: &SegmentHeader) -> Self {
        ActiveSegment {
            id: header.id,
            file,
            len: SEGMENT_HEADER_BYTES,
            allocated: SEGMENT_HEADER_BYTES,
            unsynced: false,
            written_lsn: header.lsn_mark,
            hint: HintBuilder::new(header.id),
            salt: header.salt,
        }
    }
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

impl Outcome {
    /// The LSN of a local write (which takes the next LSN, so is never a duplicate).
    pub fn local_lsn(self) -> Result<Lsn> {
        match self {
            Outcome::Committed(lsn) => Ok(lsn),
            Outcome::Duplicate => Err(crate::Error::InvalidOptions(
                "internal: a local write was treated as a duplicate".into(),
            )),
        }
    }
}

/// A record waiting to be committed.
#[derive(Debug)]
pub(crate) struct Pending {
    pub ticket: u64,
    pub record: EncodedRecord,
    pub rule: LsnRule,
    /// The writer's thread, woken (alone) when its record has a result.
    pub waiter: Thread,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    leader_active: bool,
    /// The first ticket of the leader waiting for more writers to join its group, if one is.
    gatherer: Option<u64>,
    /// How many callers that leader waits for.
    gather_target: usize,
    next_ticket: u64,
    /// Empty buffers kept for the next leader, so that a commit allocates none of them anew:
    /// the group, its results and the writers to wake.
    spare: Vec<Pending>,
    spare_results: Vec<(u64, Result<Outcome>)>,
    spare_finished: Vec<Thread>,
    /// Results not yet collected by their writers. Short (the writers of the last group or
    /// two) and scanned, not hashed: a caller's records always share one group, so it takes
    /// all of its results at once.
    results: Vec<(u64, Result<Outcome>)>,
    /// Callers whose records are waiting.
    waiting_callers: usize,
    /// How many writers the next group can expect: the callers of the previous group and
    /// those who queued while it was being synced (distinct writers, since each waits for its
    /// own result before it writes again).
    expected_callers: usize,
}

/// How many gather windows (each half a typical fsync) a waiting durable writer watches for
/// its result before it parks: enough to cover a gathering group and its fsync.
const SPIN_WINDOWS: u32 = 3;

/// At most this many writers watch at once; the rest park. Watching pays when a few writers
/// share each fsync; with dozens, the extra ones would only make the processors busy.
const MAX_SPINNERS: usize = 4;

/// How many writers may watch at once here: [`MAX_SPINNERS`], and never more than there are
/// processors. A watcher beyond them takes a processor from the syncing leader or from the
/// writers whose results just came in (measured on 2 vCPUs, 4 durable writers, binaries
/// alternating: 2 watchers ran 5.5% and 7% faster than 4, medians of 18 and 36 runs).
fn max_spinners() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let processors = thread::available_parallelism().map_or(1, |n| n.get());
        MAX_SPINNERS.min(processors)
    })
}

/// A yield that takes longer than this ran another thread for a time slice: the processors
/// are wanted elsewhere. (Measured: with 4 writers alone, 98% of yields take under 10 µs and
/// none over 2 ms; beside two busy loops, most take over 2 ms.)
const SLOW_YIELD: Duration = Duration::from_millis(1);

/// How long writers park without spinning after a slow yield.
const SPIN_PAUSE: Duration = Duration::from_millis(500);

/// Nanoseconds since the first call: a clock an atomic can hold.
fn clock() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Largest group buffer kept for reuse; a rare huge group's is freed.
const MAX_SPARE_RECORDS: usize = 1024;

/// Serialises commits into groups.
#[derive(Default)]
pub(crate) struct CommitQueue {
    queue: Mutex<Queue>,
    /// Bumped each time a leader posts results or hands leadership on, so that a waiting
    /// writer can watch for its turn without the lock.
    posted: AtomicU64,
    /// Writers now spinning in [`await_post`](Self::await_post).
    spinners: AtomicUsize,
    /// Until when (nanoseconds on [`clock`]) writers park without spinning: set when a
    /// spinner's yield came back late, i.e. other work wanted the processor.
    spin_paused_until: AtomicU64,
    /// Where a gathering leader sleeps until its window ends. Nobody notifies it: the writer
    /// that completes its group takes the group over instead.
    gather_timer: Condvar,
}

impl CommitQueue {
    /// Commits `record`, leading a group with `lead` when no other writer is leading.
    ///
    /// `lead` receives the group in arrival order, drains it, and pushes one result per record
    /// into the (empty) results buffer it is given.
    ///
    /// With a `gather` window (durable commits), a new leader that expects several writers
    /// (those of the previous group and those who queued while it synced) waits up to that
    /// long for as many to queue before it takes the group; the writer that completes the
    /// group leads it at once, so the gathering leader is not woken just to do so. Counting
    /// only the previous group would let one late writer shrink every later group's target.
    /// Without a window, writers that were synced together come back a few microseconds
    /// apart, the first one leads alone, and groups split into ever smaller halves; with it,
    /// N concurrent writers share one fsync (PostgreSQL's `commit_delay` / `commit_siblings`).
    /// A lone writer never waits.
    pub fn commit(
        &self,
        record: EncodedRecord,
        rule: LsnRule,
        gather: Option<Duration>,
        lead: impl Fn(&mut Vec<Pending>, &mut Vec<(u64, Result<Outcome>)>),
    ) -> Result<Outcome> {
        let mut results = self.commit_many(std::iter::once((record, rule)), gather, lead);
        results.pop().unwrap_or_else(|| Err(no_answer()))
    }

    /// Commits several records from one caller, in order, in one group (so one write and one
    /// sync for all of them); returns a result per record (none, at once, for no records).
    pub fn commit_many(
        &self,
        records: impl IntoIterator<Item = (EncodedRecord, LsnRule), IntoIter: ExactSizeIterator>,
        gather: Option<Duration>,
        lead: impl Fn(&mut Vec<Pending>, &mut Vec<(u64, Result<Outcome>)>),
    ) -> Vec<Result<Outcome>> {
        let records = records.into_iter();
        if records.len() == 0 {
            // Nothing to commit: no group will ever answer a caller without records.
            return Vec::new();
        }
        let mut q = self.queue.lock();
        let first = q.next_ticket;
        let count = records.len() as u64;
        q.next_ticket += count;
        for (i, (record, rule)) in records.enumerate() {
            q.waiting.push(Pending {
                ticket: first + i as u64,
                record,
                rule,
                waiter: thread::current(),
            });
        }
        q.waiting_callers += 1;
        // The writer that completes the group a leader is gathering leads it itself, at once:
        // waking the gathering leader to do it would add a wake-up to every group.
        let mut completes_group = q.gatherer.is_some() && q.waiting_callers >= q.gather_target;
        if completes_group {
            q.gatherer = None;
        }
        let mine = first..first + count;
        loop {
            if count == 1 {
                // The common case (one put): no sorting, one allocation.
                if let Some(i) = q.results.iter().position(|(t, _)| *t == first) {
                    let (_, result) = q.results.swap_remove(i);
                    return vec![result];
                }
            } else if q.results.iter().any(|(t, _)| mine.contains(t)) {
                let mut answers: Vec<(u64, Result<Outcome>)> = q
                    .results
                    .extract_if(.., |(t, _)| mine.contains(t))
                    .collect();
                drop(q);
                answers.sort_unstable_by_key(|(t, _)| *t);
                let mut answers = answers.into_iter().peekable();
                // One answer per ticket; a missing one (a bug) fails its record alone.
                return mine
                    .map(|t| match answers.next_if(|(at, _)| *at == t) {
                        Some((_, result)) => result,
                        None => Err(no_answer()),
                    })
                    .collect();
            }
            if !std::mem::take(&mut completes_group) {
                if q.leader_active || !q.waiting.iter().any(|p| mine.contains(&p.ticket)) {
                    // Another writer leads, or our records are in a group being synced: woken
                    // when our results are in, or to lead the next group. A spurious wake-up
                    // just goes round the loop.
                    let seen = self.posted.load(Ordering::Acquire);
                    MutexGuard::unlocked(&mut q, || match gather {
                        Some(window) => self.await_post(seen, window * SPIN_WINDOWS),
                        None => thread::park(),
                    });
                    continue;
                }
                q.leader_active = true;
                if let Some(window) = gather {
                    let target = q.expected_callers;
                    if target > 1 && q.waiting_callers < target {
                        let deadline = Instant::now() + window;
                        q.gatherer = Some(first);
                        q.gather_target = target;
                        while q.gatherer == Some(first) {
                            if self.gather_timer.wait_until(&mut q, deadline).timed_out() {
                                break;
                            }
                        }
                        if q.gatherer != Some(first) {
                            // The writer that completed the group took it, ours included.
                            continue;
                        }
                        q.gatherer = None;
                    }
                }
            }
            let spare = std::mem::take(&mut q.spare);
            let group = std::mem::replace(&mut q.waiting, spare);
            let group_callers = std::mem::take(&mut q.waiting_callers);
            let buffers = (
                std::mem::take(&mut q.spare_results),
                std::mem::take(&mut q.spare_finished),
            );
            drop(q);
            q = self.lead_and_post(group, group_callers, buffers, &lead);
        }
    }

    /// Waits until a leader posts after `seen`: for up to `budget` by yielding the processor
    /// in a loop (when fewer than [`max_spinners`] writers already do), then by parking.
    ///
    /// A durable writer waits about one fsync, and a parked thread takes 15-45 µs to run
    /// again once woken on a virtual machine whose idle vCPUs halt: with 4 writers that
    /// wake-up alone made each group commit 30% slower than its fsync (measured: 215 µs
    /// a group against a 130 µs fdatasync), since the next group forms only when its writers
    /// are back. A writer that watches instead is back within microseconds, as RocksDB's
    /// write thread does with its adaptive yield. Yielding, not pausing, leaves the
    /// processor to any thread with work to do, the syncing leader included.
    ///
    /// Adaptive, as RocksDB's is: when other processes want the processors, a yield hands
    /// one over for a whole time slice, the writers come back too late to form groups, and
    /// spinning collapsed throughput (measured: 4 writers beside two busy loops, 6k writes/s
    /// spinning against 21k parking). So a yield that comes back later than [`SLOW_YIELD`]
    /// ends the spin and stops all spinning for [`SPIN_PAUSE`].
    fn await_post(&self, seen: u64, budget: Duration) {
        let paused = clock() < self.spin_paused_until.load(Ordering::Relaxed);
        if paused || self.spinners.fetch_add(1, Ordering::AcqRel) >= max_spinners() {
            if !paused {
                self.spinners.fetch_sub(1, Ordering::AcqRel);
            }
            thread::park();
            return;
        }
        let deadline = Instant::now() + budget;
        let mut posted = false;
        loop {
            let before = Instant::now();
            if posted || before >= deadline {
                break;
            }
            thread::yield_now();
            posted = self.posted.load(Ordering::Acquire) != seen;
            if before.elapsed() > SLOW_YIELD {
                let until = clock() + SPIN_PAUSE.as_nanos() as u64;
                self.spin_paused_until.store(until, Ordering::Relaxed);
                break;
            }
        }
        self.spinners.fetch_sub(1, Ordering::AcqRel);
        if !posted {
            thread::park();
        }
    }

    /// Runs `lead` on `group` (the whole queue, so its tickets are one contiguous range),
    /// posts the results, releases the leadership and wakes the group's writers and the next
    /// leader. Returns the queue locked again.
    fn lead_and_post(
        &self,
        mut group: Vec<Pending>,
        group_callers: usize,
        (mut results, mut finished): (Vec<(u64, Result<Outcome>)>, Vec<Thread>),
        lead: &impl Fn(&mut Vec<Pending>, &mut Vec<(u64, Result<Outcome>)>),
    ) -> MutexGuard<'_, Queue> {
        let tickets = match (group.first(), group.last()) {
            (Some(a), Some(b)) => a.ticket..b.ticket + 1,
            _ => 0..0,
        };
        // One wake-up per writer, not per record (a writer may have queued many).
        for p in &group {
            if finished.last().is_none_or(|t| t.id() != p.waiter.id()) {
                finished.push(p.waiter.clone());
            }
        }
        let me = thread::current().id();
        let mut guard = LeaderGuard {
            queue: self,
            tickets,
            finished: &finished,
            armed: true,
        };
        lead(&mut group, &mut results);
        guard.armed = false;
        drop(guard);
        let mut q = self.queue.lock();
        q.results.append(&mut results);
        self.posted.fetch_add(1, Ordering::Release);
        group.clear();
        if group.capacity() <= MAX_SPARE_RECORDS {
            q.spare = group;
            q.spare_results = results;
        }
        q.leader_active = false;
        q.expected_callers = group_callers + q.waiting_callers;
        let next_leader = q.waiting.first().map(|p| p.waiter.clone());
        // Wake exactly the writers whose records just finished (and the next leader);
        // waking every waiter each time (a condition variable's notify_all) would cost a
        // context switch per waiting writer per group.
        MutexGuard::unlocked(&mut q, || {
            for t in finished.iter().chain(&next_leader) {
                if t.id() != me {
                    t.unpark();
                }
            }
        });
        finished.clear();
        if finished.capacity() <= MAX_SPARE_RECORDS {
            q.spare_finished = finished;
        }
        q
    }
}

/// Unblocks everyone if a leader unwinds out of `lead` (a bug): its group fails and
/// leadership is released, instead of every later writer waiting forever.
struct LeaderGuard<'a> {
    queue: &'a CommitQueue,
    tickets: Range<u64>,
    finished: &'a [Thread],
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut q = self.queue.queue.lock();
        q.leader_active = false;
        for t in self.tickets.clone() {
            q.results.push((
                t,
                Err(crate::Error::Poisoned {
                    reason: "internal: a commit leader panicked".into(),
                }),
            ));
        }
        let next_leader = q.waiting.first().map(|p| p.waiter.clone());
        self.queue.posted.fetch_add(1, Ordering::Release);
        drop(q);
        for t in self.finished.iter().chain(&next_leader) {
            t.unpark();
        }
    }
}

/// The error of a record the commit leader gave no result for (a bug).
pub(crate) fn no_answer() -> crate::Error {
    crate::Error::Poisoned {
        reason: "internal: the commit leader returned no result for a write".into(),
    }
}
