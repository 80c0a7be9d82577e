//! The background threads. One writes hint files for sealed segments and starts compaction
//! when dead bytes pass the threshold; under `SyncPolicy::EveryMillis` another one syncs the
//! log every period, and nothing else: a compaction (or a hint job waiting for one) can take
//! seconds, and the promise is that at most about one period of acknowledged writes is
//! unsynced.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::compaction::CompactionReport;
use crate::store::Inner;
use crate::wal::recovery::scan_segment;
use crate::wal::segment::SegmentId;
use crate::{wal::hint, SyncPolicy};

/// Work handed to the background thread.
#[derive(Debug)]
pub(crate) enum Job {
    WriteHint(SegmentId),
}

/// Handles on the background threads; stopping joins them.
#[derive(Default)]
pub(crate) struct Maintenance {
    jobs: Mutex<Option<Sender<Job>>>,
    /// Dropped to stop the sync thread.
    stop_syncs: Mutex<Option<Sender<()>>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Maintenance {
    pub fn start(&self, inner: &Arc<Inner>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let weak = Arc::downgrade(inner);
        let spawned = thread::Builder::new()
            .name("kvstore-maintenance".into())
            .spawn(move || run(weak, rx));
        match spawned {
            Ok(handle) => {
                *self.jobs.lock() = Some(tx);
                self.handles.lock().push(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not start the maintenance thread; hints and automatic compaction are off");
            }
        }
        if let SyncPolicy::EveryMillis(ms) = inner.opts.sync_policy {
            let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
            let weak = Arc::downgrade(inner);
            let every = Duration::from_millis(ms);
            let spawned = thread::Builder::new()
                .name("kvstore-sync".into())
                .spawn(move || sync_every(weak, every, stopped));
            match spawned {
                Ok(handle) => {
                    *self.stop_syncs.lock() = Some(stop);
                    self.handles.lock().push(handle);
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not start the sync thread; writes are synced only by flush() and at close");
                }
            }
        }
    }

    pub fn send(&self, job: Job) -> bool {
        match self.jobs.lock().as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    pub fn stop(&self) {
        self.jobs.lock().take();
        self.stop_syncs.lock().take();
        let handles = std::mem::take(&mut *self.handles.lock());
        for handle in handles {
            // A thread itself may drop the last handle; it must not join itself.
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// The sync thread of `SyncPolicy::EveryMillis`: syncs the log every `every` until `stopped`
/// disconnects.
fn sync_every(weak: Weak<Inner>, every: Duration, stopped: Receiver<()>) {
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.flush() {
            tracing::error!(error = %e, "background sync failed");
        }
    }
}

fn run(weak: Weak<Inner>, jobs: Receiver<Job>) {
    let Some(inner) = weak.upgrade() else { return };
    let tick = inner.opts.maintenance_interval;
    drop(inner);
    let mut last_compaction_check = Instant::now();
    let mut appended_at_last_check = 0;
    let mut spare_cpu = crate::spare_cpu::SpareCpu::default();
    let mut stalled: Option<Stall> = None;
    loop {
        let job = match jobs.recv_timeout(tick) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.save_wal_consumers(true) {
            tracing::warn!(error = %e, "could not save the WAL consumers; will retry");
        }
        if let Some(Job::WriteHint(id)) = job {
            if let Err(e) = inner.write_hint(id) {
                tracing::warn!(segment = id, error = %e, "writing a hint file failed; recovery will scan the segment");
            }
        }
        if inner.opts.auto_compaction
            && last_compaction_check.elapsed() >= inner.opts.maintenance_interval
        {
            let elapsed = last_compaction_check.elapsed();
            last_compaction_check = Instant::now();
            let appended = inner.counters.appended_bytes.load(Ordering::Relaxed);
            let since_last_check = appended.saturating_sub(appended_at_last_check);
            appended_at_last_check = appended;
            let compactable = inner.compactable_dead_and_total();
            let min_dead = inner.opts.compaction_min_dead_bytes;
            let waiting = stalled.is_some_and(|stall| stall.holds(compactable.0, min_dead));
            if !waiting
                && inner.compaction_due(compactable, since_last_check, elapsed, spare_cpu.sample())
            {
                stalled = compact_automatically(&inner);
            }
        }
    }
}

/// An automatic compaction that reclaimed (next to) nothing, and the compactable dead bytes
/// it left (see [`Inner::compactable_dead_and_total`]): until they change, another one would
/// rewrite the same bytes again.
#[derive(Debug, Clone, Copy)]
struct Stall {
    dead_bytes: u64,
}

impl Stall {
    /// Whether compaction should still wait, now that `dead_bytes` are compactable. It
    /// resumes once writes (or a WAL consumer moving on) add enough of them to be worth a
    /// pass, or once they fell below the stall's (a compaction, say an explicit one, changed
    /// the segments since).
    fn holds(self, dead_bytes: u64, min_dead_bytes: u64) -> bool {
        let worth_more = self.dead_bytes.saturating_add(min_dead_bytes);
        (self.dead_bytes..worth_more).contains(&dead_bytes)
    }
}

/// Whether a compaction freed at least the dead bytes that are worth one.
fn reclaimed_enough(report: &CompactionReport, inner: &Inner) -> bool {
    report.bytes_before.saturating_sub(report.bytes_after) >= inner.opts.compaction_min_dead_bytes
}

/// Runs an automatic compaction: first of the dead segments alone. Their dead bytes may be
/// tombstones it must keep, because older values of their keys lie in segments it left out;
/// rewritten, they count as dead again, and the next pass would copy them once more, for
/// ever (it reclaims nothing). So when a pass reclaims nothing, a full one follows, which
/// takes those segments too (the store is past its dead ratio, so rewriting it all costs at
/// most a few times what it frees). If that reclaims nothing either, automatic compaction
/// waits for the compactable dead bytes to change: returns the stall.
fn compact_automatically(inner: &Arc<Inner>) -> Option<Stall> {
    for full in [false, true] {
        match inner.compact_all(full) {
            Ok(report) if reclaimed_enough(&report, inner) => return None,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "automatic compaction failed");
                return None;
            }
        }
    }
    let dead_bytes = inner.compactable_dead_and_total().0;
    tracing::debug!(
        dead_bytes,
        "automatic compaction reclaims nothing more; waiting for more dead bytes"
    );
    Some(Stall { dead_bytes })
}

impl Inner {
    /// Asks the background thread for the segment's hint; without one, recovery scans it.
    pub(crate) fn schedule_hint(&self, id: SegmentId) {
        if !self.maintenance.send(Job::WriteHint(id)) {
            tracing::debug!(
                segment = id,
                "no maintenance thread; segment stays without hint"
            );
            if let Some(seg) = self.state.write().segments.get_mut(&id) {
                seg.built_hint = None;
            }
        }
    }

    /// Writes the hint of a sealed segment durably: the one built while it was written, or
    /// else one built by scanning it.
    pub(crate) fn write_hint(&self, id: SegmentId) -> crate::Result<()> {
        // Compaction may be deleting this very segment.
        let _exclusive = self.compaction_lock.lock();
        let Some((file, salt, len, compacted, built)) = ({
            let mut state = self.state.write();
            state.segments.get_mut(&id).map(|s| {
                (
                    s.file.clone(),
                    s.salt,
                    s.len,
                    s.compacted,
                    s.built_hint.take(),
                )
            })
        }) else {
            return Ok(()); // compacted away meanwhile
        };
        if let Some(bytes) = built {
            hint::write_bytes(&self.dir, id, &bytes)?;
            return self.note_hint_written(id);
        }
        let (content, damage) = scan_segment(&file, salt, len)
            .map_err(|e| crate::Error::io(format!("scanning segment {id} for its hint"), e))?;
        if let Some(crate::wal::recovery::Damage { offset, reason, .. }) = damage {
            return Err(crate::Error::Corrupt {
                path: crate::wal::segment::segment_path(&self.dir, id),
                offset,
                reason,
            });
        }
        if compacted && !hint::worth_writing(hint::encoded_len(&content), content.segment_len) {
            return Ok(());
        }
        hint::write(&self.dir, id, &content)?;
        self.note_hint_written(id)
    }

    /// Makes a new hint file's name durable and lets recovery and compaction use it.
    fn note_hint_written(&self, id: SegmentId) -> crate::Result<()> {
        self.sync_dir()?;
        if let Some(seg) = self.state.write().segments.get_mut(&id) {
            seg.has_hint = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::wal::{hint, recovery::scan_segment, segment::hint_path};
    use crate::{Options, SyncPolicy, WriteBatch};

    /// A hint built while its segment was written is, byte for byte, the one a scan of the
    /// sealed segment builds: puts, overwrites, deletes and many-op batches, over several
    /// segment rolls (some in the middle of a group).
    #[test]
    fn hints_built_while_writing_match_a_scan_of_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(32 << 10)
            .auto_compaction(false)
            .open(dir.path())
            .unwrap();
        for i in 0..3000u32 {
            let key = format!("key:{:06}", i % 700);
            match i % 7 {
                0 => {
                    store.delete(&key).unwrap();
                }
                1 => {
                    let mut batch = WriteBatch::new();
                    for j in 0..5u32 {
                        batch.put(format!("{key}/{j}"), vec![j as u8; 40]);
                    }
                    batch.delete(format!("key:{:06}", i % 11));
                    store.write_batch(batch).unwrap();
                }
                _ => {
                    store.put(&key, vec![i as u8; (i % 300) as usize]).unwrap();
                }
            }
        }
        let sealed = || -> Vec<_> {
            let state = store.inner.state.read();
            state
                .segments
                .iter()
                .filter(|(_, s)| s.sealed && !s.compacted)
                .map(|(id, s)| (*id, s.file.clone(), s.salt, s.len, s.has_hint))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sealed().iter().any(|s| !s.4) {
            assert!(Instant::now() < deadline, "hints were not written");
            std::thread::sleep(Duration::from_millis(5));
        }
        let segments = sealed();
        assert!(segments.len() >= 4, "too few rolls: {}", segments.len());
        for (id, file, salt, len, _) in segments {
            let (scanned, damage) = scan_segment(&file, salt, len).unwrap();
            assert!(damage.is_none());
            let written = std::fs::read(hint_path(dir.path(), id)).unwrap();
            assert!(
                written == hint::encode(id, &scanned),
                "segment {id}: the built hint differs from the scan's"
            );
        }
    }

    #[test]
    fn a_stall_lasts_until_the_compactable_dead_bytes_change_enough() {
        use super::Stall;
        let stall = Stall { dead_bytes: 10_000 };
        assert!(stall.holds(10_000, 4096), "nothing changed");
        assert!(
            stall.holds(14_095, 4096),
            "not enough more to be worth a pass"
        );
        assert!(!stall.holds(14_096, 4096), "enough more dead bytes");
        assert!(
            !stall.holds(9_999, 4096),
            "fewer: a compaction changed the segments"
        );
    }
}
