//! WAL consumers (replicas) and how far each has read the log: compaction keeps the log
//! segments they still need, up to `Options::max_retained_wal_bytes` (see
//! `Inner::retention_floor`).
//!
//! Like PostgreSQL's replication slots they outlive the process: the table is saved to the
//! `wal-consumers` file of the data directory and loaded at open. A new consumer, or one moved
//! back, is saved before `retain_wal` returns (lost, it would let compaction take log it
//! needs); moves forward and releases, which lost only keep more log, are saved by the
//! maintenance thread (at most once per [`SAVE_INTERVAL`]; a long compaction delays it) and
//! at close. Without
//! that, a replica that is down while its master restarts would not be kept for until it
//! reconnects, and compaction could take the records it needs and force a full resync.
//!
//! The file only ever decides how much log is kept, never what a replica is sent (that comes
//! from the replica's own applied LSN): a lost, stale or damaged file costs at most a full
//! resync, so a damaged one is reported and ignored rather than refusing the open.
//!
//! ```text
//! kvstore wal-consumers 1
//! <lsn> <name>        one line per consumer
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{IoContext, Result};
use crate::io::Vfs;
use crate::Lsn;

/// File name of the saved table, in the data directory.
pub(crate) const FILE_NAME: &str = "wal-consumers";
const HEADER: &str = "kvstore wal-consumers 1";
/// Longest a change waits before the maintenance thread saves it (saves are a file write,
/// an fsync and a rename: cheap once a second, not once per replica ack).
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// The consumers and the LSN each has consumed up to, with the bookkeeping for saving them.
#[derive(Debug, Default)]
pub(crate) struct WalConsumers {
    positions: Mutex<HashMap<String, Lsn>>,
    /// Changed since the last save.
    dirty: AtomicBool,
    last_save: Mutex<Option<Instant>>,
}

fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

impl WalConsumers {
    /// The table saved in `dir`; empty when there is none, or (with a warning) when it is
    /// damaged.
    pub fn load(dir: &Path) -> Self {
        let path = path_in(dir);
        let positions = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).unwrap_or_else(|reason| {
                tracing::warn!(path = %path.display(), %reason,
                    "ignoring a damaged WAL consumer file: replicas that were down are no longer kept for");
                HashMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "could not read the WAL consumer file: replicas that were down are no longer kept for");
                HashMap::new()
            }
        };
        WalConsumers {
            positions: Mutex::new(positions),
            ..Default::default()
        }
    }

    /// Registers `name` at `lsn`, or moves it there. Returns whether the change must be saved
    /// at once: a new consumer, or one moved back, would lose log it needs if a crash lost
    /// the change; a move forward lost only keeps more log than needed, and waits.
    pub fn set(&self, name: &str, lsn: Lsn) -> bool {
        let mut positions = self.positions.lock();
        let before = positions.insert(name.to_string(), lsn);
        if before != Some(lsn) {
            self.dirty.store(true, Ordering::Release);
        }
        before.is_none_or(|before| lsn < before)
    }

    /// Unregisters `name`.
    pub fn remove(&self, name: &str) {
        if self.positions.lock().remove(name).is_some() {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Every consumer and its LSN, by name.
    pub fn list(&self) -> Vec<(String, Lsn)> {
        let mut list: Vec<(String, Lsn)> = self
            .positions
            .lock()
            .iter()
            .map(|(name, lsn)| (name.clone(), *lsn))
            .collect();
        list.sort_unstable();
        list
    }

    /// Saves the table if it changed and the last save is [`SAVE_INTERVAL`] old.
    pub fn save_if_due(&self, dir: &Path, vfs: &dyn Vfs) -> Result<()> {
        let recent = self
            .last_save
            .lock()
            .is_some_and(|at| at.elapsed() < SAVE_INTERVAL);
        if recent {
            return Ok(());
        }
        self.save_if_changed(dir, vfs)
    }

    /// Saves the table if it changed since the last save: a new file, synced, renamed over
    /// the old one, and the directory synced, so a crash leaves the old table or the new.
    pub fn save_if_changed(&self, dir: &Path, vfs: &dyn Vfs) -> Result<()> {
        let mut last_save = self.last_save.lock();
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let text = render(&self.list());
        let saved = write_replacing(dir, &text, vfs);
        if saved.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        *last_save = Some(Instant::now());
        saved
    }
}

fn render(list: &[(String, Lsn)]) -> String {
    let mut text = format!("{HEADER}\n");
    for (name, lsn) in list {
        // A line per consumer: a name that would end its line early is not kept across
        // restarts (replication's names are addresses, which never hold one).
        if name.contains(['\n', '\r']) {
            tracing::warn!(consumer = ?name, "a WAL consumer whose name holds a line break is not saved");
            continue;
        }
        text.push_str(&format!("{lsn} {name}\n"));
    }
    text
}

fn parse(text: &str) -> std::result::Result<HashMap<String, Lsn>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the first line is not {HEADER:?}"));
    }
    let mut positions = HashMap::new();
    for (n, line) in lines.enumerate() {
        let parsed = line
            .split_once(' ')
            .and_then(|(lsn, name)| Some((lsn.parse::<Lsn>().ok()?, name)));
        let Some((lsn, name)) = parsed else {
            return Err(format!("line {} is not `<lsn> <name>`: {line:?}", n + 2));
        };
        positions.insert(name.to_string(), lsn);
    }
    if !text.ends_with('\n') {
        return Err("the file does not end with a line break (cut short)".into());
    }
    Ok(positions)
}

fn write_replacing(dir: &Path, text: &str, vfs: &dyn Vfs) -> Result<()> {
    let path = path_in(dir);
    // `.tmp`: recovery removes a leftover one.
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .ctx(|| format!("writing {}", tmp.display()))?;
    file.sync_data()
        .ctx(|| format!("syncing {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, &path).ctx(|| format!("renaming {} into place", tmp.display()))?;
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_through_its_text() {
        let list = vec![
            ("replica:127.0.0.1:7001".to_string(), 42),
            ("replica:[::1]:7002".to_string(), 0),
            ("with spaces in it".to_string(), u64::MAX),
        ];
        let parsed = parse(&render(&list)).unwrap();
        let mut back: Vec<(String, Lsn)> = parsed.into_iter().collect();
        back.sort_unstable();
        let mut want = list.clone();
        want.sort_unstable();
        assert_eq!(back, want);
    }

    #[test]
    fn damaged_text_is_refused() {
        assert!(parse("").is_err());
        assert!(parse("kvstore wal-consumers 2\n").is_err());
        assert!(parse("kvstore wal-consumers 1\nx replica:a\n").is_err());
        assert!(parse("kvstore wal-consumers 1\n12\n").is_err());
        assert!(parse("kvstore wal-consumers 1\n12 replica:a").is_err());
        assert_eq!(parse("kvstore wal-consumers 1\n").unwrap().len(), 0);
    }

    #[test]
    fn names_with_line_breaks_are_left_out() {
        let list = vec![("a\nb".to_string(), 1), ("c".to_string(), 2)];
        let parsed = parse(&render(&list)).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed.get("c"), Some(&2));
    }
}
