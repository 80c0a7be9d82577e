//! The background thread: writes hint files for sealed segments, syncs under
//! `SyncPolicy::EveryMillis`, and starts compaction when dead bytes pass the threshold.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::store::Inner;
use crate::wal::recovery::scan_segment;
use crate::wal::segment::SegmentId;
use crate::{wal::hint, SyncPolicy};

/// Work handed to the background thread.
#[derive(Debug)]
pub(crate) enum Job {
    WriteHint(SegmentId),
}

/// Handle on the background thread; stopping it joins it.
#[derive(Default)]
pub(crate) struct Maintenance {
    jobs: Mutex<Option<Sender<Job>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
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
                *self.handle.lock() = Some(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not start the maintenance thread; hints and automatic compaction are off");
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
        if let Some(handle) = self.handle.lock().take() {
            // The thread itself may drop the last handle; it must not join itself.
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

fn run(weak: Weak<Inner>, jobs: Receiver<Job>) {
    let Some(inner) = weak.upgrade() else { return };
    let every = match inner.opts.sync_policy {
        SyncPolicy::EveryMillis(ms) => Some(Duration::from_millis(ms)),
        _ => None,
    };
    let tick = every.map_or(inner.opts.maintenance_interval, |e| {
        e.min(inner.opts.maintenance_interval)
    });
    drop(inner);
    let mut last_sync = Instant::now();
    let mut last_compaction_check = Instant::now();
    let mut appended_at_last_check = 0;
    let mut spare_cpu = crate::spare_cpu::SpareCpu::default();
    loop {
        let job = match jobs.recv_timeout(tick) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(inner) = weak.upgrade() else { return };
        if let Some(Job::WriteHint(id)) = job {
            if let Err(e) = inner.write_hint(id) {
                tracing::warn!(segment = id, error = %e, "writing a hint file failed; recovery will scan the segment");
            }
        }
        if let Some(every) = every {
            if last_sync.elapsed() >= every {
                last_sync = Instant::now();
                if let Err(e) = inner.flush() {
                    tracing::error!(error = %e, "background sync failed");
                }
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
            if inner.compaction_due(since_last_check, elapsed, spare_cpu.sample()) {
                if let Err(e) = inner.compact_all(false) {
                    tracing::warn!(error = %e, "automatic compaction failed");
                }
            }
        }
    }
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
}
