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
//! point has diverged and is refused until an operator forces a resync or empties it. This is
//! PostgreSQL's timeline history and Raft's "same term at the same index" check.

use std::borrow::Cow;
use std::fs;
use std::path::Path;

use kvstore_core::{KvStore, Lsn};

use crate::epoch::{io_err, write_durably};
use crate::error::{Error, Result};

/// Name of the timeline file inside a data directory.
pub const TIMELINE_FILE_NAME: &str = "REPLICATION_TIMELINE";

/// Entries a timeline keeps. Beyond this the two oldest fold into one [`MERGED_EPOCH`] entry
/// whose incarnation number is a hash of the entries it replaced, so that a master restarted
/// thousands of times still sends a short `HELLO`, and a replica can fold its own entries the
/// same way to compare (see [`Timeline::first_difference`]).
pub const MAX_TIMELINE_ENTRIES: usize = 256;

/// The epoch of a folded entry (masters start at epoch 1).
pub const MERGED_EPOCH: u64 = 0;

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
            self.fold_first();
        }
    }

    /// Replaces the first two entries with one that covers both, named by a hash of both.
    fn fold_first(&mut self) {
        let (a, b) = (self.entries[0], self.entries[1]);
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        for word in [
            a.epoch,
            a.incarnation,
            a.start,
            b.epoch,
            b.incarnation,
            b.start,
        ] {
            for byte in word.to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        self.entries.splice(
            0..2,
            [TimelineEntry {
                epoch: MERGED_EPOCH,
                incarnation: hash,
                start: a.start,
            }],
        );
    }

    /// Folds the oldest entries until the first one reaches `frontier`: what this timeline
    /// looks like once it has folded as far as one whose first entry ends there.
    fn folded_to(&self, frontier: Lsn) -> Timeline {
        let mut folded = self.clone();
        while folded.entries.len() >= 2 && folded.entries[1].start < frontier {
            folded.fold_first();
        }
        folded
    }

    /// Where the first entry of a timeline that has folded entries ends.
    fn fold_frontier(&self) -> Option<Lsn> {
        match self.entries.as_slice() {
            [first, second, ..] if first.epoch == MERGED_EPOCH => Some(second.start),
            _ => None,
        }
    }

    /// Which incarnation wrote `lsn`; `None` below the first entry (records from before this
    /// log kept a timeline).
    fn writer_of(&self, lsn: Lsn) -> Option<(u64, u64)> {
        let after = self.entries.partition_point(|e| e.start <= lsn);
        after.checked_sub(1).map(|i| self.entries[i].writer())
    }

    /// The first LSN at which a replica whose log has this timeline may hold other records
    /// than the master whose timeline is `master`; `None` when they agree everywhere.
    ///
    /// An LSN counts as agreed only where both name the same writer, or where neither names
    /// one (records from before either kept a timeline). So an empty replica timeline agrees
    /// with a master's only below its first entry: a replica with records past that point
    /// and no timeline got them from elsewhere. A master that keeps no timeline (an empty
    /// `master`) cannot be checked this way: `None`, and only LSNs are compared.
    pub fn first_difference(&self, master: &Timeline) -> Option<Lsn> {
        let master_first = master.entries.first()?;
        if self.entries.is_empty() {
            return Some(master_first.start);
        }
        // A replica keeps the timeline its master had at the last session; the master may
        // have folded more of its oldest entries since. Compared at the same fold, a replica
        // that followed along names the same hash there; one whose entries differ does not.
        let frontier = self.fold_frontier().max(master.fold_frontier());
        let (own, master) = match frontier {
            Some(frontier) => (
                Cow::Owned(self.folded_to(frontier)),
                Cow::Owned(master.folded_to(frontier)),
            ),
            None => (Cow::Borrowed(self), Cow::Borrowed(master)),
        };
        // The writer of an LSN changes only at some entry's start.
        let mut boundaries: Vec<Lsn> = own
            .entries
            .iter()
            .chain(&master.entries)
            .map(|e| e.start)
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        boundaries
            .into_iter()
            .find(|&lsn| own.writer_of(lsn) != master.writer_of(lsn))
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

/// Begins a master incarnation of `epoch` for `store`: its timeline gets a new entry with a
/// random incarnation number, durably, before the master writes anything more. Returns the
/// timeline to send in `HELLO`.
///
/// The entry starts at the next LSN, or earlier, at the first record this process wrote
/// before it began any incarnation ([`KvStore::unclaimed_writes_start`]: writes made before a
/// replicator was attached follow whatever the log held when it was opened, which may be
/// less than what a replica received before a crash). Records applied from a master (a
/// replica being promoted) keep their master's incarnation.
pub fn begin_incarnation(store: &KvStore, epoch: u64) -> Result<Timeline> {
    let dir = store.path();
    let mut attempts = 0;
    loop {
        let mut timeline = Timeline::read(dir)?;
        let start = store.unclaimed_writes_start();
        timeline.begin(epoch, rand::random::<u64>(), start);
        timeline.write(dir)?;
        // Only once the entry is durable: if storing it failed, the next attempt starts there
        // too. A log that moved back meanwhile (a snapshot install) needs an entry that
        // starts lower, which replaces this one (`Timeline::begin`).
        match store.claim_writes(start) {
            Err(kvstore_core::Error::WritesNotCovered { .. }) if attempts < 8 => attempts += 1,
            claimed => return claimed.map(|()| timeline).map_err(Into::into),
        }
    }
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
    fn a_replica_without_a_timeline_agrees_only_below_the_masters_first_entry() {
        let master = timeline(&[(1, 10, 101), (1, 11, 201)]);
        assert_eq!(Timeline::default().first_difference(&master), Some(101));
        // A master that keeps none: nothing to compare.
        assert_eq!(master.first_difference(&Timeline::default()), None);
    }

    #[test]
    fn a_master_that_lost_its_tail_below_its_first_entry_is_caught() {
        // Both began their timelines at 101 (records below are older than timelines); the
        // master then lost everything from 81 on and restarted there.
        let replica = timeline(&[(1, 10, 101)]);
        let mut master = replica.clone();
        master.begin(1, 12, 81);
        assert_eq!(master.entries().len(), 1);
        assert_eq!(replica.first_difference(&master), Some(81));
    }

    #[test]
    fn a_replica_that_follows_along_is_never_refused_when_the_master_folds() {
        let mut master = Timeline::default();
        for i in 0..(3 * MAX_TIMELINE_ENTRIES as u64) {
            // The replica has the timeline of the master's last start; the master restarts
            // cleanly at the next LSN.
            let replica = master.clone();
            let start = i * 10 + 1;
            master.begin(1, 1000 + i, start);
            assert!(master.entries().len() <= MAX_TIMELINE_ENTRIES);
            if let Some(d) = replica.first_difference(&master) {
                assert_eq!(d, start, "restart {i}: parted before the new start");
            }
        }
        assert_eq!(master.entries()[0].epoch, MERGED_EPOCH);
        assert_eq!(
            master.entries()[0].start,
            1,
            "the known history still begins at 1"
        );
        assert_eq!(master.first_difference(&master.clone()), None);
    }

    #[test]
    fn folded_history_still_tells_a_different_past() {
        let mut master = Timeline::default();
        for i in 0..(MAX_TIMELINE_ENTRIES as u64 + 10) {
            master.begin(1, 1000 + i, i * 10 + 1);
        }
        // A replica that followed another lineage for the first LSNs (incarnation 999
        // instead of 1000) and then the same entries: the fold hashes differ.
        let mut other = Timeline::default();
        other.begin(1, 999, 1);
        for i in 1..(MAX_TIMELINE_ENTRIES as u64 + 5) {
            other.begin(1, 1000 + i, i * 10 + 1);
        }
        assert_eq!(other.first_difference(&master), Some(1));
        // A replica far behind, whose whole timeline the master has folded away: its entries
        // fold into a hash of fewer entries, so it cannot be shown to agree.
        let old_replica = timeline(&[(1, 1000, 1), (1, 1001, 11)]);
        assert_eq!(old_replica.first_difference(&master), Some(1));
        // The master lost its tail inside the folded range: they part there at the latest
        // (at the fold's start, here: what was folded is not known entry by entry any more).
        let replica = master.clone();
        master.begin(1, 5000, 15);
        assert!(replica.first_difference(&master).is_some_and(|d| d <= 15));
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
    fn begin_incarnation_is_stored_and_covers_writes_made_before_it() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io_err(Path::new("tmp"), e))?;
        let store = KvStore::open(dir.path())?;
        store.put(b"a", b"v")?;
        store.put(b"b", b"v")?;
        // Written before this process began any incarnation: the first one starts at them.
        let first = begin_incarnation(&store, 1)?;
        assert_eq!(first.entries()[0].start, 1);
        assert_eq!(Timeline::read(dir.path())?, first);
        // Later writes of this process are that incarnation's, whether or not a replicator
        // is attached meanwhile: the next one starts at the next LSN.
        store.put(b"c", b"v")?;
        let second = begin_incarnation(&store, 1)?;
        assert_eq!(second.entries().len(), 2);
        assert_eq!(second.entries()[1].start, 4);
        assert_ne!(
            second.entries()[1].incarnation,
            first.entries()[0].incarnation
        );
        drop(store);
        // A new process that writes before it begins one: the entry starts at that write.
        let store = KvStore::open(dir.path())?;
        store.put(b"d", b"v")?;
        let third = begin_incarnation(&store, 1)?;
        assert_eq!(third.entries().last().map(|e| e.start), Some(4));
        Ok(())
    }

    #[test]
    fn a_failed_begin_leaves_the_early_writes_to_the_next_one() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io_err(Path::new("tmp"), e))?;
        let store = KvStore::open(dir.path())?;
        store.put(b"early", b"v")?;
        // Storing the timeline fails (its temporary file's name is taken by a directory).
        let blocker = dir.path().join(format!("{TIMELINE_FILE_NAME}.new"));
        std::fs::create_dir(&blocker).map_err(|e| io_err(&blocker, e))?;
        assert!(begin_incarnation(&store, 1).is_err());
        std::fs::remove_dir(&blocker).map_err(|e| io_err(&blocker, e))?;
        store.put(b"later", b"v")?;
        let timeline = begin_incarnation(&store, 1)?;
        assert_eq!(
            timeline.entries()[0].start,
            1,
            "the early write is still covered"
        );
        Ok(())
    }

    #[test]
    fn a_snapshot_install_leaves_no_early_writes_behind() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io_err(Path::new("tmp"), e))?;
        let store = KvStore::open(dir.path())?;
        store.put(b"local", b"v")?;
        // Resynced from a master's snapshot at LSN 50: the log holds the master's records.
        let mut install = store.begin_snapshot_install(50)?;
        install.put(b"k", b"v")?;
        install.finish()?;
        assert_eq!(store.unclaimed_writes_start(), 51);
        let timeline = begin_incarnation(&store, 2)?;
        assert_eq!(timeline.entries()[0].start, 51);
        Ok(())
    }
}
