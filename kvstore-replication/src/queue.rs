//! The live queue of one replica: a bounded mailbox the commit hook appends to and the
//! replica's worker drains in one go.
//!
//! A channel costs a send and a receive per record (slot stamps, wakers); a mailbox costs one
//! short lock per record on the master and one lock per drain on the worker, which takes
//! whatever accumulated. The bound counts what the worker took and still holds, so the records
//! queued for a replica never exceed the capacity. A record that does not fit is not queued:
//! the hook counts an overflow and the worker, seeing the gap at the head of its queue, catches
//! up from the master's WAL (DESIGN §4: never silently dropped).

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::protocol::SharedRecord;

/// What became of a record offered to a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Post {
    /// Queued for the worker.
    Queued,
    /// Not queued: the replica's queue holds its capacity (the worker catches up from the WAL).
    Full,
    /// Not queued: the replicator is closing.
    Closed,
}

#[derive(Debug, Default)]
struct Slots {
    records: Vec<SharedRecord>,
    /// Records the worker took and reported still holding at its last drain.
    held: usize,
    /// A waiting worker wants to be woken once `records` holds this many (0: nobody waits).
    wake_at: usize,
    closed: bool,
}

/// One replica's bounded live queue.
#[derive(Debug)]
pub(crate) struct Mailbox {
    slots: Mutex<Slots>,
    ready: Condvar,
    capacity: usize,
}

impl Mailbox {
    /// An empty mailbox holding at most `capacity` records (with those its worker holds).
    pub fn new(capacity: usize) -> Self {
        Mailbox {
            slots: Mutex::new(Slots::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends `record` unless the queue is full or closed; wakes the worker if it waits for
    /// as many records as there now are, or if the record was refused as full.
    pub fn post(&self, record: &SharedRecord) -> Post {
        let mut slots = self.slots.lock();
        if slots.closed {
            return Post::Closed;
        }
        if slots.records.len() + slots.held >= self.capacity {
            // The queue cannot grow, so a worker waiting for more records would wait out its
            // whole timeout; it has to read this record from the WAL instead: wake it now.
            if slots.wake_at != 0 {
                slots.wake_at = 0;
                drop(slots);
                self.ready.notify_one();
            }
            return Post::Full;
        }
        slots.records.push(record.clone());
        if slots.wake_at != 0 && slots.records.len() >= slots.wake_at {
            slots.wake_at = 0;
            drop(slots);
            self.ready.notify_one();
        }
        Post::Queued
    }

    /// Moves every queued record to the back of `out`, recording that the worker now holds
    /// `out.len()` records. Empty `out`s are swapped with the queue's buffer instead of copied.
    pub fn drain_into(&self, out: &mut VecDeque<SharedRecord>) {
        let mut slots = self.slots.lock();
        if out.is_empty() {
            let mut spare = Vec::from(std::mem::take(out));
            spare.clear();
            *out = VecDeque::from(std::mem::replace(&mut slots.records, spare));
        } else {
            out.extend(slots.records.drain(..));
        }
        slots.held = out.len();
    }

    /// Tells the mailbox the worker now holds `held` records (after it sent some).
    pub fn set_held(&self, held: usize) {
        self.slots.lock().held = held;
    }

    /// Waits until at least `want` records are queued, a record is refused for lack of room,
    /// the mailbox closes or `deadline` passes. Returns whether it is closed.
    pub fn wait(&self, want: usize, deadline: Instant) -> bool {
        let want = want.max(1);
        let mut slots = self.slots.lock();
        while !slots.closed && slots.records.len() < want {
            slots.wake_at = want;
            let timed_out = self.ready.wait_until(&mut slots, deadline).timed_out();
            // A poster that woke us cleared `wake_at`: enough records, or one refused (the
            // worker must go to the WAL). Anything else was spurious: wait on.
            if timed_out || slots.wake_at == 0 {
                break;
            }
        }
        slots.wake_at = 0;
        slots.closed
    }

    /// Records queued and not yet drained.
    pub fn len(&self) -> usize {
        self.slots.lock().records.len()
    }

    /// Records queued for the replica: in the mailbox and held by its worker.
    pub fn depth(&self) -> usize {
        let slots = self.slots.lock();
        slots.records.len() + slots.held
    }

    /// Whether the mailbox is closed and has nothing left to drain.
    pub fn is_finished(&self) -> bool {
        let slots = self.slots.lock();
        slots.closed && slots.records.is_empty()
    }

    /// Refuses further records and wakes the worker; queued records stay drainable.
    pub fn close(&self) {
        self.slots.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kvstore_core::{Op, WalRecord};

    use super::*;

    fn record(lsn: u64) -> SharedRecord {
        SharedRecord::from(&WalRecord {
            lsn,
            ops: vec![Op::Delete { key: b"k".to_vec() }],
        })
    }

    #[test]
    fn a_drain_takes_everything_in_order() {
        let mailbox = Mailbox::new(8);
        for lsn in 1..=3 {
            assert_eq!(mailbox.post(&record(lsn)), Post::Queued);
        }
        let mut out = VecDeque::new();
        mailbox.drain_into(&mut out);
        assert_eq!(out.iter().map(|r| r.lsn()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(mailbox.len(), 0);
        assert_eq!(mailbox.post(&record(4)), Post::Queued);
        mailbox.drain_into(&mut out);
        assert_eq!(
            out.iter().map(|r| r.lsn()).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn the_bound_counts_what_the_worker_holds() {
        let mailbox = Mailbox::new(3);
        for lsn in 1..=3 {
            assert_eq!(mailbox.post(&record(lsn)), Post::Queued);
        }
        assert_eq!(mailbox.post(&record(4)), Post::Full);
        let mut out = VecDeque::new();
        mailbox.drain_into(&mut out);
        // The worker holds three: still full.
        assert_eq!(mailbox.post(&record(4)), Post::Full);
        assert_eq!(mailbox.depth(), 3);
        out.pop_front();
        mailbox.set_held(out.len());
        assert_eq!(mailbox.post(&record(4)), Post::Queued);
        assert_eq!(mailbox.depth(), 3);
    }

    #[test]
    fn closing_refuses_records_but_keeps_the_queued_ones() {
        let mailbox = Mailbox::new(4);
        assert_eq!(mailbox.post(&record(1)), Post::Queued);
        mailbox.close();
        assert_eq!(mailbox.post(&record(2)), Post::Closed);
        assert!(!mailbox.is_finished());
        assert!(mailbox.wait(5, Instant::now() + Duration::from_secs(5)));
        let mut out = VecDeque::new();
        mailbox.drain_into(&mut out);
        assert_eq!(out.len(), 1);
        assert!(mailbox.is_finished());
    }

    #[test]
    fn a_waiting_worker_wakes_when_enough_records_arrived() {
        let mailbox = std::sync::Arc::new(Mailbox::new(16));
        let poster = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                for lsn in 1..=4 {
                    mailbox.post(&record(lsn));
                }
            })
        };
        let closed = mailbox.wait(4, Instant::now() + Duration::from_secs(10));
        assert!(!closed);
        assert_eq!(mailbox.len(), 4);
        poster.join().unwrap();
    }

    #[test]
    fn a_record_refused_as_full_wakes_a_waiting_worker() {
        let mailbox = std::sync::Arc::new(Mailbox::new(2));
        let mut held = VecDeque::new();
        for lsn in 1..=2 {
            mailbox.post(&record(lsn));
        }
        mailbox.drain_into(&mut held);
        let poster = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                // Until the worker waits, a post could not wake it: retry until one does.
                let deadline = Instant::now() + Duration::from_secs(10);
                while mailbox.slots.lock().wake_at == 0 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                mailbox.post(&record(3))
            })
        };
        let started = Instant::now();
        assert!(!mailbox.wait(1, started + Duration::from_secs(10)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slept to the deadline"
        );
        assert_eq!(poster.join().unwrap(), Post::Full);
    }

    #[test]
    fn a_wait_ends_at_its_deadline() {
        let mailbox = Mailbox::new(4);
        assert!(!mailbox.wait(1, Instant::now() + Duration::from_millis(5)));
        assert_eq!(mailbox.len(), 0);
    }
}
