//! Which master incarnation wrote which LSNs: the check that keeps a replica from following a
//! master whose log no longer holds what the replica applied.
//!
//! LSNs alone cannot tell. A master running with `fsync everysec` that loses its last second
//! in a power cut restarts at LSN 90 while a replica has applied up to 100; once the master has
//! written ten new records, its log reaches 100 again, and a replica that compares LSNs would
//! take its records from 101 on, keeping its own 91–100 where the master now has others. The
//! same happens to a replica of an old master when another replica, further behind, is
//! promoted.
//!
//! So every master start (and every promotion) begins a new [`TimelineEntry`]: its epoch, a
//! random incarnation number and the first LSN it will write, stored durably before it writes
//! anything. A master sends its whole [`Timeline`] in `HELLO`; a replica keeps the timeline of
//! the master it follows. Two logs agree up to the first LSN where their timelines name a
//! different writer ([`Timeline::first_difference`]); a replica whose applied LSN reaches that
//! point has diverged and is refused until an operator forces a resync. This is PostgreSQL's
//! timeline history and Raft's "same term at the same index" check.

use std::fs;
use std::path::Path;

use kvstore_core::Lsn;

use crate::epoch::{io_err, write_durably};
use crate::error::{Error, Result};

/// Name of the timeline file inside a data directory.
pub const TIMELINE_FILE_NAME: &str = "REPLICATION_TIMELINE";

/// Entries a timeline keeps: the oldest are dropped beyond this (see
/// [`Timeline::first_difference`] for why that stays safe), so that a master restarted
/// thousands of times still sends a short `HELLO`.
pub const MAX_TIMELINE_ENTRIES: usize = 256;

/// One master incarnation and the first LSN it wrote (or will write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The master's epoch.
    pub epoch: u64,
    /// Random, drawn at each master start: two starts in one epoch never share it.
    pub incarnation: u64,
    /// The first LSN of this incarnation.
    pub start: Lsn,
}

impl TimelineEntry {
    fn writer(&self) -> (u64, u64) {
        (self.epoch, self.incarnation)
    }
}

/// The incarnations of a log, by ascending start LSN. Each entry covers the LSNs from its
/// start up to the next entry's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// The entries, by ascending start.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }

    /// Whether nothing is known (a store that never ran as a master or followed one since
    /// timelines exist).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts an incarnation whose first LSN is `start`. Entries that start at or after it
    /// wrote nothing that survives in this log (an incarnation with no writes, or one whose
    /// writes were lost with the tail of the log), so they are dropped.
    pub fn begin(&mut self, epoch: u64, incarnation: u64, start: Lsn) {
        while self.entries.last().is_some_and(|e| e.start >= start) {
            self.entries.pop();
        }
        self.entries.push(TimelineEntry {
            epoch,
            incarnation,
            start,
        });
        if self.entries.len() > MAX_TIMELINE_ENTRIES {
            let excess = self.entries.len() - MAX_TIMELINE_ENTRIES;
            self.entries.drain(..excess);
        }
    }

    /// Which incarnation wrote `lsn`, if this timeline reaches back that far.
    fn writer_of(&self, lsn: Lsn) -> Option<(u64, u64)> {
        let after = self.entries.partition_point(|e| e.start <= lsn);
        after.checked_sub(1).map(|i| self.entries[i].writer())
    }

    /// The first LSN at which two logs with these timelines may hold different records;
    /// `None` when they agree wherever both are known. Below the later of the two first
    /// entries nothing is known to differ (a timeline that dropped its oldest entries, or an
    /// empty one, cannot tell), so only the LSNs from there on are compared: a replica whose
    /// log diverged before that point is not caught, one that diverged after it always is.
    pub fn first_difference(&self, other: &Timeline) -> Option<Lsn> {
        let (Some(a), Some(b)) = (self.entries.first(), other.entries.first()) else {
            return None;
        };
        let floor = a.start.max(b.start);
        let mut boundaries: Vec<Lsn> = self
            .entries
            .iter()
            .chain(&other.entries)
            .map(|e| e.start.max(floor))
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        boundaries
            .into_iter()
            .find(|&lsn| self.writer_of(lsn) != other.writer_of(lsn))
    }

    /// The wire and file form: `epoch:incarnation:start` entries separated by commas.
    pub fn encode(&self) -> String {
        self.entries
            .iter()
            .map(|e| format!("{}:{}:{}", e.epoch, e.incarnation, e.start))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`encode`](Self::encode)'s form. Refuses malformed entries, starts that do not
    /// ascend and more than [`MAX_TIMELINE_ENTRIES`] entries.
    pub fn decode(text: &str) -> Result<Timeline> {
        let bad = |why: &str| Error::Protocol(format!("bad timeline {text:?}: {why}"));
        let text = text.trim();
        if text.is_empty() {
            return Ok(Timeline::default());
        }
        let mut entries = Vec::new();
        for item in text.split(',') {
            let numbers: Vec<&str> = item.split(':').collect();
            let [epoch, incarnation, start] = numbers.as_slice() else {
                return Err(bad("an entry is not epoch:incarnation:start"));
            };
            let number = |s: &str| s.parse::<u64>().map_err(|_| bad("not a number"));
            let entry = TimelineEntry {
                epoch: number(epoch)?,
                incarnation: number(incarnation)?,
                start: number(start)?,
            };
            if entries
                .last()
                .is_some_and(|prev: &TimelineEntry| prev.start >= entry.start)
            {
                return Err(bad("starts do not ascend"));
            }
            entries.push(entry);
            if entries.len() > MAX_TIMELINE_ENTRIES {
                return Err(bad("too many entries"));
            }
        }
        Ok(Timeline { entries })
    }

    /// Reads the timeline stored in `dir` (empty when there is none).
    pub fn read(dir: &Path) -> Result<Timeline> {
        let path = dir.join(TIMELINE_FILE_NAME);
        match fs::read_to_string(&path) {
            Ok(text) => Timeline::decode(&text).map_err(|e| {
                io_err(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Timeline::default()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Stores the timeline in `dir` durably (a crash leaves the old or the new one).
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_durably(dir, TIMELINE_FILE_NAME, &format!("{}\n", self.encode()))
    }
}

/// Begins a master incarnation of `epoch` in `dir`, whose first write will take `next_lsn`:
/// the stored timeline gets a new entry with a random incarnation number, durably, before the
/// master writes anything. Returns the timeline to send in `HELLO`.
pub fn begin_incarnation(dir: &Path, epoch: u64, next_lsn: Lsn) -> Result<Timeline> {
    let mut timeline = Timeline::read(dir)?;
    timeline.begin(epoch, rand::random::<u64>(), next_lsn);
    timeline.write(dir)?;
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(entries: &[(u64, u64, Lsn)]) -> Timeline {
        let mut t = Timeline::default();
        for &(epoch, incarnation, start) in entries {
            t.begin(epoch, incarnation, start);
        }
        t
    }

    #[test]
    fn a_restart_that_kept_its_log_agrees_with_a_replica_of_the_old_incarnation() {
        let replica = timeline(&[(1, 10, 1)]);
        let master = timeline(&[(1, 10, 1), (1, 11, 101)]);
        // The replica's log (up to 100 at most) lies before the first difference.
        assert_eq!(replica.first_difference(&master), Some(101));
        assert_eq!(master.first_difference(&master.clone()), None);
    }

    #[test]
    fn a_restart_that_lost_its_tail_is_caught() {
        // The master wrote 1..=100 in incarnation 10, lost 91..=100 and restarted at 91.
        let replica = timeline(&[(1, 10, 1)]);
        let master = timeline(&[(1, 10, 1), (1, 11, 91)]);
        assert_eq!(replica.first_difference(&master), Some(91));
        assert_eq!(master.first_difference(&replica), Some(91));
    }

    #[test]
    fn an_incarnation_whose_writes_were_all_lost_is_dropped() {
        let mut t = timeline(&[(1, 10, 1), (1, 11, 91)]);
        // Restarted again at 80: incarnation 11's writes are gone, and part of 10's.
        t.begin(1, 12, 80);
        assert_eq!(
            t.entries(),
            &[
                TimelineEntry {
                    epoch: 1,
                    incarnation: 10,
                    start: 1
                },
                TimelineEntry {
                    epoch: 1,
                    incarnation: 12,
                    start: 80
                }
            ]
        );
    }

    #[test]
    fn promotion_splits_the_replicas_that_went_further() {
        let old_master = timeline(&[(1, 10, 1)]);
        // A replica at 85 is promoted; the old master had written up to 100.
        let promoted = timeline(&[(1, 10, 1), (2, 20, 86)]);
        // Replicas of the old master that applied 86 or more are refused by the new one.
        assert_eq!(old_master.first_difference(&promoted), Some(86));
    }

    #[test]
    fn only_what_both_know_is_compared() {
        let trimmed = timeline(&[(3, 30, 500), (3, 31, 900)]);
        let full = timeline(&[(1, 10, 1), (2, 20, 200), (3, 30, 500), (3, 31, 900)]);
        assert_eq!(trimmed.first_difference(&full), None);
        assert_eq!(Timeline::default().first_difference(&full), None);
        let other = timeline(&[(1, 10, 1), (2, 20, 200), (3, 32, 600)]);
        assert_eq!(trimmed.first_difference(&other), Some(500));
    }

    #[test]
    fn keeps_at_most_the_newest_entries() {
        let mut t = Timeline::default();
        for i in 0..(MAX_TIMELINE_ENTRIES as u64 + 10) {
            t.begin(1, i, i * 10 + 1);
        }
        assert_eq!(t.entries().len(), MAX_TIMELINE_ENTRIES);
        assert_eq!(t.entries()[0].incarnation, 10);
    }

    #[test]
    fn encodes_decodes_and_refuses_bad_text() -> Result<()> {
        let t = timeline(&[(1, 10, 1), (2, u64::MAX, 86)]);
        assert_eq!(Timeline::decode(&t.encode())?, t);
        assert_eq!(Timeline::decode("")?, Timeline::default());
        for bad in [
            "1:2",
            "1:2:3:4",
            "x:1:1",
            "1:1:5,2:2:5",
            "1:1:-1",
            ",",
            "1:1:1,",
        ] {
            assert!(Timeline::decode(bad).is_err(), "{bad:?} was accepted");
        }
        Ok(())
    }

    #[test]
    fn begin_incarnation_is_stored() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io_err(Path::new("tmp"), e))?;
        let first = begin_incarnation(dir.path(), 1, 1)?;
        let second = begin_incarnation(dir.path(), 1, 51)?;
        assert_eq!(second.entries().len(), 2);
        assert_eq!(second.entries()[0], first.entries()[0]);
        assert_ne!(
            second.entries()[1].incarnation,
            first.entries()[0].incarnation
        );
        assert_eq!(Timeline::read(dir.path())?, second);
        Ok(())
    }
}
