//! The live queue: one bounded backlog of committed records, shared by every replica. The
//! commit hook appends each record's bytes once; each replica's worker reads from its own
//! position.
//!
//! A queue per replica cost the master, per record and replica, a lock, a reference-count
//! increment on the record's buffer (a cache line the workers' threads also write) and a wake
//! check: with two replicas that was about a sixth of the master's time on a put. Here the
//! master takes one lock and copies the record's bytes to the end of a buffer the workers
//! allocated; a worker seals that buffer into an immutable chunk and makes its records
//! (shared slices of the chunk) without the lock, so every allocation and reference count of
//! the live queue stays on the workers' threads.
//!
//! When the backlog holds its capacity, the oldest chunk makes room for the newest record: a
//! replica that had not taken it finds a gap at the head of its queue and catches up from the
//! master's WAL (DESIGN §4: never silently dropped), while the replicas keeping up go on
//! streaming.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kvstore_core::{EncodedWalRecord, Lsn};
use parking_lot::{Condvar, Mutex};

use crate::lag::{Lag, LagBook, LAG_BOOK_CAPACITY};
use crate::protocol::SharedRecord;

/// Room for records a freshly sealed backlog starts its next open buffers with.
const MIN_OPEN_RECORDS: usize = 256;
/// Room for bytes likewise, and at most (one burst of large values must not set aside twice
/// its size for good).
const MIN_OPEN_BYTES: usize = 64 << 10;
const MAX_OPEN_BYTES: usize = 4 << 20;

/// One replica's position in the backlog. Positions count records pushed since the backlog was
/// made (not LSNs: the hook skips records a replica wrote itself, so LSNs may have holes).
#[derive(Debug, Default, Clone, Copy)]
struct Reader {
    /// Position of the next record this reader has not taken.
    next: u64,
    /// Records the reader took and reported still holding.
    held: usize,
    /// The reader waits to be woken once `pushed` reaches this (0: not waiting).
    wake_at: u64,
}

/// Records sealed by a reader's take: immutable, so readers copy out of them without the lock.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// Position of the first record.
    start: u64,
    sealed: Arc<Sealed>,
}

#[derive(Debug)]
struct Sealed {
    bytes: Bytes,
    /// Each record's LSN and where it ends in `bytes` (it starts where the one before ends).
    records: Vec<(Lsn, usize)>,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.sealed.records.len() as u64
    }

    /// Record `i` of the chunk, a shared slice of its bytes (verified where it is applied).
    fn record(&self, i: usize) -> Option<SharedRecord> {
        let (lsn, end) = *self.sealed.records.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => self.sealed.records[before].1,
            None => 0,
        };
        let bytes = self.sealed.bytes.slice(start..end);
        Some(EncodedWalRecord::from_committed_bytes(lsn, bytes))
    }
}

#[derive(Debug)]
struct State {
    /// Older records, oldest first, in chunks as readers sealed them.
    sealed: VecDeque<Chunk>,
    /// The newest records' bytes, appended by the hook until a reader seals them.
    open_bytes: BytesMut,
    /// Their LSNs and end offsets in `open_bytes`.
    open_records: Vec<(Lsn, usize)>,
    /// Position of the first open record.
    open_start: u64,
    readers: Vec<Reader>,
    closed: bool,
    /// Bytes of the records held, sealed and open.
    bytes: usize,
    /// When each recent record was committed: kept under the same lock, so that the hook
    /// takes one lock per record, not two.
    lag: LagBook,
}

impl State {
    /// Position of the oldest record still held.
    fn front(&self) -> u64 {
        self.sealed.front().map_or(self.open_start, |c| c.start)
    }

    /// Position of the first record past the newest.
    fn pushed(&self) -> u64 {
        self.open_start + self.open_records.len() as u64
    }

    /// Where reader `idx` goes on: records before `front` are gone.
    fn start_of(&self, idx: usize) -> u64 {
        self.readers
            .get(idx)
            .map_or(self.pushed(), |r| r.next.max(self.front()))
    }

    fn available(&self, idx: usize) -> usize {
        (self.pushed() - self.start_of(idx)) as usize
    }

    /// Moves the open records into a sealed chunk, so readers can copy them unlocked.
    fn seal(&mut self) {
        if self.open_records.is_empty() {
            return;
        }
        // The next open buffers are allocated here, on the worker, with room for twice what
        // these held: the hook growing them would reallocate in this thread's malloc arena,
        // taking that arena's lock while this thread allocates.
        let byte_room = (self.open_bytes.len() * 2).clamp(MIN_OPEN_BYTES, MAX_OPEN_BYTES);
        let record_room = (self.open_records.len() * 2).max(MIN_OPEN_RECORDS);
        let bytes = std::mem::replace(&mut self.open_bytes, BytesMut::with_capacity(byte_room));
        let records = std::mem::replace(&mut self.open_records, Vec::with_capacity(record_room));
        let start = self.open_start;
        self.open_start += records.len() as u64;
        self.sealed.push_back(Chunk {
            start,
            sealed: Arc::new(Sealed {
                bytes: bytes.freeze(),
                records,
            }),
        });
    }
}

/// The replicas' shared, bounded live queue.
#[derive(Debug)]
pub(crate) struct Backlog {
    state: Mutex<State>,
    /// One per reader, so that a record wakes only the workers waiting for it.
    wakers: Vec<Condvar>,
    capacity: usize,
    byte_capacity: usize,
}

impl Backlog {
    /// An empty backlog for `readers` replicas, holding at most `capacity` records and
    /// `byte_capacity` bytes of them (the workers hold at most two windows each on top; a
    /// record larger than `byte_capacity` is held alone).
    pub fn new(capacity: usize, byte_capacity: usize, readers: usize) -> Self {
        Backlog {
            state: Mutex::new(State {
                sealed: VecDeque::new(),
                open_bytes: BytesMut::new(),
                open_records: Vec::new(),
                open_start: 0,
                readers: vec![Reader::default(); readers],
                closed: false,
                bytes: 0,
                lag: LagBook::new(LAG_BOOK_CAPACITY),
            }),
            wakers: (0..readers).map(|_| Condvar::new()).collect(),
            capacity: capacity.max(1),
            byte_capacity: byte_capacity.max(1),
        }
    }

    /// Notes in the lag book that the record `bytes` was committed at `lsn` at time `at`;
    /// unless `queue` is false (no replica takes live records now), appends a copy of it. If
    /// the backlog is full, its oldest chunk makes room and `overflowed(idx, n)` tells each
    /// reader's `n` records it had not taken. Wakes the readers waiting for this many
    /// records. Returns whether the record was queued (never once the backlog is closed).
    pub fn push(
        &self,
        lsn: Lsn,
        bytes: &[u8],
        at: Instant,
        queue: bool,
        mut overflowed: impl FnMut(usize, u64),
    ) -> bool {
        let mut state = self.state.lock();
        state.lag.record(lsn, bytes.len() as u64, at);
        if state.closed || !queue {
            return false;
        }
        let mut dropped = Vec::new();
        while state.pushed() > state.front()
            && (state.pushed() - state.front() >= self.capacity as u64
                || state.bytes + bytes.len() > self.byte_capacity)
        {
            if state.sealed.is_empty() {
                state.seal();
            }
            let Some(chunk) = state.sealed.pop_front() else {
                break;
            };
            for (idx, reader) in state.readers.iter().enumerate() {
                let missed = chunk.end().saturating_sub(reader.next.max(chunk.start));
                if missed > 0 {
                    overflowed(idx, missed);
                }
            }
            state.bytes -= chunk.sealed.bytes.len();
            dropped.push(chunk);
        }
        state.bytes += bytes.len();
        state.open_bytes.extend_from_slice(bytes);
        let end = state.open_bytes.len();
        state.open_records.push((lsn, end));
        let pushed = state.pushed();
        // Wakes are collected and sent after unlocking, so a woken worker does not block on
        // the lock the master still holds.
        let mut wake = 0u64;
        for (idx, reader) in state.readers.iter_mut().enumerate() {
            if reader.wake_at != 0 && pushed >= reader.wake_at {
                reader.wake_at = 0;
                if idx < 64 {
                    wake |= 1 << idx;
                } else {
                    self.wakers[idx].notify_one();
                }
            }
        }
        drop(state);
        drop(dropped);
        while wake != 0 {
            let idx = wake.trailing_zeros() as usize;
            self.wakers[idx].notify_one();
            wake &= wake - 1;
        }
        true
    }

    /// Appends up to `max` of reader `idx`'s next records to `out` and records that the reader
    /// holds `out.len()`; moves the chunks every reader that `is_live` has passed into
    /// `spent`, to be dropped outside the lock. Records dropped before the reader took them
    /// are skipped (it sees the gap). The lock is held only to pick chunks, not to copy.
    pub fn take(
        &self,
        idx: usize,
        out: &mut VecDeque<SharedRecord>,
        max: usize,
        is_live: impl Fn(usize) -> bool,
        spent: &mut Vec<Chunk>,
    ) {
        let mut pieces: Vec<(Chunk, usize, usize)> = Vec::new();
        let mut state = self.state.lock();
        let start = state.start_of(idx);
        let end = state.pushed().min(start.saturating_add(max as u64));
        if end > state.open_start {
            state.seal();
        }
        let first = state.sealed.partition_point(|c| c.end() <= start);
        for chunk in state.sealed.range(first..) {
            if chunk.start >= end {
                break;
            }
            let from = (start.max(chunk.start) - chunk.start) as usize;
            let to = (end.min(chunk.end()) - chunk.start) as usize;
            pieces.push((chunk.clone(), from, to));
        }
        let taking = (end - start) as usize;
        if let Some(reader) = state.readers.get_mut(idx) {
            reader.next = end;
            reader.held = out.len() + taking;
        }
        let pushed = state.pushed();
        let keep_from = state
            .readers
            .iter()
            .enumerate()
            .filter(|(i, _)| is_live(*i))
            .map(|(_, r)| r.next)
            .min()
            .unwrap_or(pushed);
        while state.sealed.front().is_some_and(|c| c.end() <= keep_from) {
            if let Some(chunk) = state.sealed.pop_front() {
                state.bytes -= chunk.sealed.bytes.len();
                spent.push(chunk);
            }
        }
        drop(state);
        out.reserve(taking);
        for (chunk, from, to) in pieces {
            out.extend((from..to).filter_map(|i| chunk.record(i)));
        }
    }

    /// Forgets the commit times of records up to `lsn` (every replica acknowledged them).
    pub fn forget_lag_through(&self, lsn: Lsn) {
        self.state.lock().lag.forget_through(lsn);
    }

    /// The lag of replicas that acknowledged `acked` (each), when the master's last LSN is
    /// `master_last`, at `now`.
    pub fn lags(&self, acked: &[Lsn], master_last: Lsn, now: Instant) -> Vec<Lag> {
        let state = self.state.lock();
        acked
            .iter()
            .map(|a| state.lag.lag(*a, master_last, now))
            .collect()
    }

    /// Tells the backlog reader `idx` now holds `held` records (after it sent some).
    pub fn set_held(&self, idx: usize, held: usize) {
        if let Some(reader) = self.state.lock().readers.get_mut(idx) {
            reader.held = held;
        }
    }

    /// Waits until reader `idx` has at least `want` records to take, the backlog closes or
    /// `deadline` passes. Returns whether the backlog is closed.
    pub fn wait(&self, idx: usize, want: usize, deadline: Instant) -> bool {
        let want = want.max(1) as u64;
        let Some(waker) = self.wakers.get(idx) else {
            return self.state.lock().closed;
        };
        let mut state = self.state.lock();
        while !state.closed && (state.available(idx) as u64) < want {
            let wake_at = state.start_of(idx) + want;
            state.readers[idx].wake_at = wake_at;
            let timed_out = waker.wait_until(&mut state, deadline).timed_out();
            // A push that woke us cleared `wake_at`; anything else was spurious: wait on.
            if timed_out || state.readers[idx].wake_at == 0 {
                break;
            }
        }
        if let Some(reader) = state.readers.get_mut(idx) {
            reader.wake_at = 0;
        }
        state.closed
    }

    /// Records reader `idx` has not taken yet.
    pub fn len(&self, idx: usize) -> usize {
        self.state.lock().available(idx)
    }

    /// Records queued for reader `idx`: not taken yet, or taken and still held.
    pub fn depth(&self, idx: usize) -> usize {
        let state = self.state.lock();
        state.available(idx) + state.readers.get(idx).map_or(0, |r| r.held)
    }

    /// Records queued for all readers together.
    pub fn total_depth(&self) -> usize {
        let state = self.state.lock();
        (0..state.readers.len())
            .map(|idx| state.available(idx) + state.readers[idx].held)
            .sum()
    }

    /// Whether the backlog is closed and reader `idx` has nothing left to take.
    pub fn is_finished(&self, idx: usize) -> bool {
        let state = self.state.lock();
        state.closed && state.available(idx) == 0
    }

    /// Refuses further records and wakes every reader; queued records stay takeable.
    pub fn close(&self) {
        self.state.lock().closed = true;
        for waker in &self.wakers {
            waker.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use kvstore_core::{Op, WalRecord};

    use super::*;

    fn record(lsn: u64) -> SharedRecord {
        SharedRecord::from(&WalRecord {
            lsn,
            ops: vec![Op::Delete { key: b"k".to_vec() }],
        })
    }

    fn lsns(q: &VecDeque<SharedRecord>) -> Vec<u64> {
        q.iter().map(|r| r.lsn()).collect()
    }

    /// Pushes record `lsn`; `overflowed` hears of records dropped unread.
    fn push(backlog: &Backlog, lsn: u64, overflowed: impl FnMut(usize, u64)) -> bool {
        backlog.push(
            lsn,
            record(lsn).as_bytes(),
            Instant::now(),
            true,
            overflowed,
        )
    }

    fn all_live(_: usize) -> bool {
        true
    }

    fn queued(backlog: &Backlog) -> u64 {
        let state = backlog.state.lock();
        state.pushed() - state.front()
    }

    #[test]
    fn each_reader_takes_every_record_in_order_at_its_own_pace() {
        let backlog = Backlog::new(8, usize::MAX, 2);
        for lsn in 1..=3 {
            assert!(backlog.push(
                lsn,
                record(lsn).as_bytes(),
                Instant::now(),
                true,
                |_, _| panic!("no overflow")
            ));
        }
        let (mut a, mut b) = (VecDeque::new(), VecDeque::new());
        backlog.take(0, &mut a, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&a), [1, 2, 3]);
        assert_eq!(backlog.len(0), 0);
        assert_eq!(backlog.len(1), 3);
        push(&backlog, 4, |_, _| panic!("no overflow"));
        backlog.take(1, &mut b, 2, all_live, &mut Vec::new());
        assert_eq!(lsns(&b), [1, 2]);
        backlog.take(1, &mut b, usize::MAX, all_live, &mut Vec::new());
        backlog.take(0, &mut a, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&a), [1, 2, 3, 4]);
        assert_eq!(lsns(&b), [1, 2, 3, 4]);
        // Both took everything: the backlog keeps nothing.
        assert_eq!(queued(&backlog), 0);
    }

    #[test]
    fn a_full_backlog_drops_its_oldest_chunk_and_tells_who_missed_it() {
        let backlog = Backlog::new(3, usize::MAX, 2);
        for lsn in 1..=3 {
            push(&backlog, lsn, |_, _| panic!("no overflow"));
        }
        let mut a = VecDeque::new();
        backlog.take(0, &mut a, usize::MAX, all_live, &mut Vec::new());
        let mut missed = Vec::new();
        push(&backlog, 4, |idx, n| missed.push((idx, n)));
        // Reader 0 took records 1-3 already; reader 1 never will.
        assert_eq!(missed, [(1, 3)]);
        let mut b = VecDeque::new();
        backlog.take(1, &mut b, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&b), [4], "the gap shows at the head");
        assert_eq!(backlog.depth(1), 1);
        b.clear();
        backlog.set_held(1, 0);
        assert_eq!(backlog.depth(1), 0);
        assert_eq!(backlog.depth(0), 1 + 3, "one to take, three held");
    }

    #[test]
    fn a_full_backlog_nobody_read_drops_what_it_holds() {
        let backlog = Backlog::new(2, usize::MAX, 1);
        let mut missed = 0;
        for lsn in 1..=3 {
            push(&backlog, lsn, |_, n| missed += n);
        }
        assert_eq!(missed, 2);
        let mut a = VecDeque::new();
        backlog.take(0, &mut a, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&a), [3]);
    }

    #[test]
    fn the_bytes_are_bounded_too() {
        let size = record(1).as_bytes().len();
        let backlog = Backlog::new(1000, size * 5 / 2, 1);
        let mut missed = 0;
        for lsn in 1..=3 {
            push(&backlog, lsn, |_, n| missed += n);
        }
        assert_eq!(missed, 2, "the oldest records made room");
        assert!(backlog.state.lock().bytes <= size * 5 / 2);
        let mut a = VecDeque::new();
        backlog.take(0, &mut a, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&a), [3]);
        assert_eq!(
            backlog.state.lock().bytes,
            0,
            "taken by every reader: let go"
        );
        // A record larger than the bound is held alone.
        let large = Backlog::new(1000, 1, 1);
        assert!(push(&large, 1, |_, _| {}));
        assert!(push(&large, 2, |_, _| {}));
        let mut b = VecDeque::new();
        large.take(0, &mut b, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&b), [2]);
    }

    #[test]
    fn a_reader_that_is_not_live_does_not_pin_records() {
        let backlog = Backlog::new(8, usize::MAX, 2);
        for lsn in 1..=4 {
            push(&backlog, lsn, |_, _| {});
        }
        let mut a = VecDeque::new();
        backlog.take(0, &mut a, usize::MAX, |idx| idx == 0, &mut Vec::new());
        assert_eq!(queued(&backlog), 0);
        // Reader 1 comes back to find nothing queued: it catches up from the WAL.
        assert_eq!(backlog.len(1), 0);
        push(&backlog, 5, |_, _| panic!("room enough"));
        let mut b = VecDeque::new();
        backlog.take(1, &mut b, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(lsns(&b), [5]);
    }

    #[test]
    fn closing_refuses_records_but_keeps_the_queued_ones() {
        let backlog = Backlog::new(4, usize::MAX, 1);
        assert!(push(&backlog, 1, |_, _| {}));
        backlog.close();
        assert!(!push(&backlog, 2, |_, _| {}));
        assert!(!backlog.is_finished(0));
        assert!(backlog.wait(0, 5, Instant::now() + Duration::from_secs(5)));
        let mut out = VecDeque::new();
        backlog.take(0, &mut out, usize::MAX, all_live, &mut Vec::new());
        assert_eq!(out.len(), 1);
        assert!(backlog.is_finished(0));
    }

    #[test]
    fn a_waiting_reader_wakes_when_enough_records_arrived() {
        let backlog = Arc::new(Backlog::new(16, usize::MAX, 2));
        let pusher = {
            let backlog = backlog.clone();
            std::thread::spawn(move || {
                for lsn in 1..=4 {
                    push(&backlog, lsn, |_, _| {});
                }
            })
        };
        let started = Instant::now();
        let closed = backlog.wait(1, 4, started + Duration::from_secs(10));
        assert!(!closed);
        assert_eq!(backlog.len(1), 4);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slept to the deadline"
        );
        pusher.join().unwrap();
    }

    #[test]
    fn a_full_backlog_still_wakes_a_reader_waiting_for_more_than_it_holds() {
        let backlog = Arc::new(Backlog::new(2, usize::MAX, 1));
        let pusher = {
            let backlog = backlog.clone();
            std::thread::spawn(move || {
                // Until the reader waits, a push could not wake it: push until one does.
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut lsn = 0;
                while backlog.state.lock().readers[0].wake_at == 0 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                for _ in 0..5 {
                    lsn += 1;
                    push(&backlog, lsn, |_, _| {});
                }
            })
        };
        let started = Instant::now();
        assert!(!backlog.wait(0, 5, started + Duration::from_secs(10)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slept to the deadline"
        );
        pusher.join().unwrap();
    }

    /// One step of a random schedule against a backlog.
    #[derive(Debug, Clone)]
    enum Step {
        /// Commit the next record (LSNs skip by `gap`, as for records a replica wrote).
        Push { gap: u64 },
        /// Reader `reader` takes up to `max` records.
        Take { reader: usize, max: usize },
        /// Reader `reader` stops or starts counting as live (skipped while unhealthy).
        Toggle { reader: usize },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u64..3).prop_map(|gap| Step::Push { gap }),
            3 => (0usize..3, 0usize..6).prop_map(|(reader, max)| Step::Take { reader, max }),
            1 => (0usize..3).prop_map(|reader| Step::Toggle { reader }),
        ]
    }

    proptest::proptest! {
        /// Whatever the schedule: every reader gets records in rising LSN order, never one
        /// twice, each whole; the backlog never holds more than its bounds allow; a reader
        /// that was always live and takes everything at the end gets the newest record.
        #[test]
        fn readers_see_rising_whole_records_within_bounds(
            capacity in 1usize..12,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let size = record(1).as_bytes().len();
            let byte_capacity = size * (capacity + 2) / 2;
            let backlog = Backlog::new(capacity, byte_capacity, 3);
            let mut live = [true; 3];
            // Records a reader was not live for may be let go before it takes them.
            let mut ever_skipped = [false; 3];
            let mut last_taken = [0u64; 3];
            let mut lsn = 0;
            for step in steps {
                match step {
                    Step::Push { gap } => {
                        lsn += 1 + gap;
                        push(&backlog, lsn, |_, _| {});
                    }
                    Step::Take { reader, max } => {
                        let mut out = VecDeque::new();
                        backlog.take(reader, &mut out, max, |i| live[i], &mut Vec::new());
                        proptest::prop_assert!(out.len() <= max);
                        for r in &out {
                            proptest::prop_assert!(r.lsn() > last_taken[reader]);
                            last_taken[reader] = r.lsn();
                            proptest::prop_assert!(r.to_wal_record().is_ok());
                        }
                        backlog.set_held(reader, 0);
                    }
                    Step::Toggle { reader } => {
                        live[reader] = !live[reader];
                        ever_skipped[reader] = true;
                    }
                }
                let state = backlog.state.lock();
                let held = (state.pushed() - state.front()) as usize;
                // The record pushed last may exceed the bounds on its own.
                proptest::prop_assert!(held <= capacity || held == 1);
                proptest::prop_assert!(state.bytes <= byte_capacity.max(size));
            }
            if lsn > last_taken[0] && !ever_skipped[0] {
                let mut out = VecDeque::new();
                backlog.take(0, &mut out, usize::MAX, |_| true, &mut Vec::new());
                proptest::prop_assert_eq!(out.back().map(|r| r.lsn()), Some(lsn));
            }
        }
    }

    #[test]
    fn a_wait_ends_at_its_deadline() {
        let backlog = Backlog::new(4, usize::MAX, 1);
        assert!(!backlog.wait(0, 1, Instant::now() + Duration::from_millis(5)));
        assert_eq!(backlog.len(0), 0);
    }
}
