//! Lag accounting: when each recent record was committed and how many bytes preceded it, so a
//! replica's lag can be told in records, bytes and milliseconds from its acked LSN alone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kvstore_core::Lsn;

/// Records remembered for lag accounting. Beyond this, the oldest are forgotten and the lag
/// of a replica further behind is reported from the oldest remembered record (a lower bound).
pub const LAG_BOOK_CAPACITY: usize = 1 << 18;

#[derive(Debug, Clone, Copy)]
struct Entry {
    lsn: Lsn,
    /// Encoded bytes of this record.
    bytes: u64,
    /// Bytes of all records committed since attach, this one included.
    cumulative_bytes: u64,
    committed_at: Instant,
}

/// A replica's lag behind the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Records committed on the master and not acknowledged.
    pub records: u64,
    /// Encoded bytes of those records (lower bound when they predate the lag book).
    pub bytes: u64,
    /// Age of the oldest unacknowledged record (lower bound likewise).
    pub millis: u64,
}

/// Commit times and cumulative sizes of recent records, in LSN order.
#[derive(Debug)]
pub struct LagBook {
    entries: VecDeque<Entry>,
    total_bytes: u64,
    capacity: usize,
}

impl LagBook {
    /// An empty book remembering at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        LagBook {
            entries: VecDeque::new(),
            total_bytes: 0,
            capacity: capacity.max(1),
        }
    }

    /// Notes a committed record (called in LSN order).
    pub fn record(&mut self, lsn: Lsn, bytes: u64, at: Instant) {
        self.total_bytes += bytes;
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            lsn,
            bytes,
            cumulative_bytes: self.total_bytes,
            committed_at: at,
        });
    }

    /// Forgets records every replica has acknowledged.
    pub fn forget_through(&mut self, lsn: Lsn) {
        while self.entries.front().is_some_and(|e| e.lsn <= lsn) {
            self.entries.pop_front();
        }
    }

    /// Lag of a replica that acknowledged `acked` when the master's last LSN is `master_last`.
    pub fn lag(&self, acked: Lsn, master_last: Lsn, now: Instant) -> Lag {
        if acked >= master_last {
            return Lag::default();
        }
        let records = master_last - acked;
        let Some(first) = self.entries.front() else {
            return Lag {
                records,
                ..Lag::default()
            };
        };
        // Records after `acked`, or every remembered record when it predates the book.
        let (bytes_before, oldest) = match acked.checked_sub(first.lsn) {
            Some(offset) => {
                let acked_entry = self.entries.get(offset as usize);
                (
                    acked_entry.map_or(self.total_bytes, |e| e.cumulative_bytes),
                    self.entries.get(offset as usize + 1),
                )
            }
            None => (first.cumulative_bytes - first.bytes, Some(first)),
        };
        Lag {
            records,
            bytes: self.total_bytes.saturating_sub(bytes_before),
            millis: oldest.map_or(0, |e| {
                duration_ms(now.saturating_duration_since(e.committed_at))
            }),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_in_records_bytes_and_millis() {
        let t0 = Instant::now();
        let mut book = LagBook::new(100);
        for lsn in 1..=5 {
            book.record(lsn, 10 * lsn, t0 + Duration::from_millis(lsn * 100));
        }
        let now = t0 + Duration::from_millis(1000);
        assert_eq!(book.lag(5, 5, now), Lag::default());
        // Records 3, 4, 5 are missing: 30 + 40 + 50 bytes, the oldest committed at 300 ms.
        assert_eq!(
            book.lag(2, 5, now),
            Lag {
                records: 3,
                bytes: 120,
                millis: 700
            }
        );
        book.forget_through(2);
        assert_eq!(
            book.lag(2, 5, now),
            Lag {
                records: 3,
                bytes: 120,
                millis: 700
            }
        );
        // Behind the book's start: a lower bound from what is remembered.
        assert_eq!(
            book.lag(0, 5, now),
            Lag {
                records: 5,
                bytes: 120,
                millis: 700
            }
        );
    }

    #[test]
    fn capacity_bounds_the_book() {
        let t0 = Instant::now();
        let mut book = LagBook::new(2);
        for lsn in 1..=4 {
            book.record(lsn, 1, t0);
        }
        assert_eq!(book.entries.len(), 2);
        assert_eq!(book.lag(0, 4, t0).bytes, 2);
    }
}
