//! Online compaction: live records of sealed segments are copied into new ("compacted")
//! segments while reads and writes go on, then swapped in for the old ones.
//!
//! Safety rests on three rules:
//! - a copied record keeps its LSN, and recovery lets the highest LSN of a key win;
//! - a tombstone is dropped only when no segment left outside the compaction holds an older
//!   record (nothing it hides can come back);
//! - old and new segments are exchanged by a [`swap`](crate::wal::swap), atomic across crashes.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::index::Location;
use crate::io::FileIo;
use crate::options::Options;
use crate::store::Inner;
use crate::wal::compacted::CompactedWriter;
use crate::wal::hint;
use crate::wal::record::op_disk_bytes;
use crate::wal::recovery::visit_segment;
use crate::wal::segment::{segment_path, SegmentId, SEGMENT_HEADER_BYTES};
use crate::wal::swap::{self, SwapPlan};
use crate::Lsn;

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Segments rewritten and removed.
    pub segments_compacted: usize,
    /// Segments written.
    pub segments_written: usize,
    /// Bytes of the removed segments.
    pub bytes_before: u64,
    /// Bytes of the segments written.
    pub bytes_after: u64,
}

struct Candidate {
    id: SegmentId,
    file: Arc<dyn FileIo>,
    salt: u32,
    len: u64,
    has_hint: bool,
}

/// The operations of a compaction candidate, as its hint (or a scan) lists them, with their
/// keys back to back in one buffer rather than one allocation each.
#[derive(Default)]
struct CandidateEntries {
    keys: Vec<u8>,
    entries: Vec<CandidateEntry>,
}

struct CandidateEntry {
    key_start: usize,
    key_len: usize,
    lsn: Lsn,
    value_offset: u32,
    value_len: u32,
    is_delete: bool,
}

impl CandidateEntries {
    fn push(&mut self, e: &hint::EntryRef<'_>) {
        self.entries.push(CandidateEntry {
            key_start: self.keys.len(),
            key_len: e.key.len(),
            lsn: e.lsn,
            value_offset: e.value_offset,
            value_len: e.value_len,
            is_delete: e.is_delete,
        });
        self.keys.extend_from_slice(e.key);
    }

    fn key(&self, e: &CandidateEntry) -> &[u8] {
        &self.keys[e.key_start..e.key_start + e.key_len]
    }
}

/// Index entries checked per read-lock acquisition, so writers are never held up for long.
const LIVENESS_CHUNK: usize = 1024;
/// Index entries moved to their copies per write-lock acquisition.
const INSTALL_CHUNK: usize = 1024;

/// Writes stream in when the log grows by at least this fraction of a segment per
/// maintenance interval (with the defaults, 512 KiB per 100 ms).
const BUSY_SEGMENT_FRACTION: u64 = 16;

/// Whether `appended` bytes in `elapsed` are a stream of writes: the rate, not the count, so
/// that a check that came late (after a long compaction, say) does not take an ordinary flow
/// for a burst.
pub(crate) fn writes_stream_in(appended: u64, elapsed: Duration, opts: &Options) -> bool {
    let per_interval = (opts.segment_bytes / BUSY_SEGMENT_FRACTION) as f64;
    let intervals = elapsed.as_secs_f64() / opts.maintenance_interval.as_secs_f64().max(1e-3);
    appended as f64 >= per_interval * intervals.max(1.0)
}

/// Less idle processor time than this (in processors) leaves none to spare for compaction
/// during a stream of writes. A lone writer on 2 processors leaves about one idle, and a
/// compaction there costs it about a fifth of its rate while it runs (a full compaction beside
/// a non-durable writer: 475k against 600k puts/s; before compaction stopped looking records
/// up in the index under its lock, 360k), which the space it keeps low is worth: in
/// kvstore-bench, 1.60× the live data right after overwriting every key instead of 2.72×.
pub(crate) const SPARE_PROCESSORS: f64 = 0.5;

/// Whether automatic compaction should start, given the sealed segments' `dead` and `total`
/// bytes and whether it would compete for the processors (`busy`: writes stream in and the
/// machine has no idle processor to spare).
///
/// Otherwise it starts once dead bytes pass `compaction_min_dead_bytes` and the dead ratio.
/// Busy, it waits until the dead share is halfway from the ratio to all (0.7 for 0.4: the log
/// stays under about 3.3 times the live data): a compaction in the middle of a burst would
/// take the processor from the writers, and copies values the rest of the burst makes dead
/// anyway. Measured with `redis-benchmark` (200,000 SETs, random keys) against a master and
/// two replicas on 2 cores: the background thread took half of each replica's CPU and a
/// quarter of the master's, mostly compacting. A writer alone on a machine with a processor
/// to spare keeps compaction going (and its space low) during the burst.
pub(crate) fn compaction_wanted(dead: u64, total: u64, busy: bool, opts: &Options) -> bool {
    if dead < opts.compaction_min_dead_bytes || total == 0 {
        return false;
    }
    let ratio = opts.compaction_dead_ratio;
    let threshold = if busy { (1.0 + ratio) / 2.0 } else { ratio };
    dead as f64 >= threshold * total as f64
}

impl Inner {
    /// Whether automatic compaction should start now (see [`compaction_wanted`]), with
    /// `(dead, total)` the [`compactable_dead_and_total`](Self::compactable_dead_and_total)
    /// bytes; `appended` is how many bytes commits appended to the log in the `elapsed` time
    /// since the last check, `idle` how many processors the machine left idle meanwhile
    /// (`None`: unknown, taken as enough).
    pub(crate) fn compaction_due(
        &self,
        (dead, total): (u64, u64),
        appended: u64,
        elapsed: Duration,
        idle: Option<f64>,
    ) -> bool {
        let streaming = writes_stream_in(appended, elapsed, &self.opts);
        let no_spare = idle.is_some_and(|idle| idle < SPARE_PROCESSORS);
        compaction_wanted(dead, total, streaming && no_spare, &self.opts)
    }

    /// Dead and total bytes of the sealed segments a compaction may take now: log segments
    /// that WAL consumers still need are not counted, so that a store whose dead bytes they
    /// pin is not compacted in vain (and is, as soon as they move on).
    pub(crate) fn compactable_dead_and_total(&self) -> (u64, u64) {
        let (floor, _) = self.retention_floor(self.active_id());
        self.state.read().compactable_dead_and_total(floor)
    }

    /// The LSN below which no registered WAL consumer needs the log, ignoring consumers that
    /// fell further behind than the retention limit allows; and those ignored (name, LSN and
    /// bytes retained for them).
    fn retention_floor(&self, active: SegmentId) -> (Lsn, Vec<(String, Lsn, u64)>) {
        let consumers = self.wal_consumers.list();
        let state = self.state.read();
        let mut floor = Lsn::MAX;
        let mut dropped = Vec::new();
        for (name, lsn) in consumers {
            let retained = crate::stats::retained_bytes(&state, active, lsn);
            if retained > self.opts.max_retained_wal_bytes {
                dropped.push((name, lsn, retained));
            } else {
                floor = floor.min(lsn);
            }
        }
        (floor, dropped)
    }

    /// Seals the active segment if it holds any record, so that a full compaction covers it.
    fn seal_active_if_written(&self) -> Result<()> {
        let mut active = self.active.lock();
        // No group may be written but unpublished when the segment is sealed; and a group
        // that failed while we waited has poisoned the store, which must stop us here.
        self.sequencer.drain();
        if let Some(reason) = self.poison_reason() {
            return Err(Error::Poisoned { reason });
        }
        if active.len > SEGMENT_HEADER_BYTES {
            let last = active.written_lsn;
            let sealed = self.roll(&mut active, last).inspect_err(|e| {
                self.poison(&e.to_string());
            })?;
            self.finish_seal(&[sealed]);
        }
        Ok(())
    }

    /// Runs one compaction over the sealed segments no WAL consumer still needs: those with
    /// dead bytes, or with `full` (an explicit `compact()`), also every log segment (the
    /// active one sealed first), so that all data ends in compacted form: densely packed, and
    /// without hint files where they would repeat most of the bytes.
    pub(crate) fn compact_all(self: &Arc<Self>, full: bool) -> Result<CompactionReport> {
        let _exclusive = self.compaction_lock.lock();
        if let Some(reason) = self.poison_reason() {
            return Err(Error::Poisoned { reason });
        }
        if full {
            self.seal_active_if_written()?;
        }
        let active = self.active_id();
        let (floor, dropped) = self.retention_floor(active);
        for (name, lsn, retained) in dropped {
            tracing::warn!(consumer = %name, lsn, retained, limit = self.opts.max_retained_wal_bytes,
                "WAL consumer is too far behind; compacting its log (it will need a full resync)");
        }
        let (candidates, outside_min_lsn, horizon) = {
            let state = self.state.read();
            let mut candidates = Vec::new();
            let mut outside_min = Lsn::MAX;
            let mut horizon = 0;
            let eligible =
                |s: &crate::index::Segment| s.sealed && (s.compacted || s.max_lsn <= floor);
            let mut wanted: BTreeSet<SegmentId> = state
                .segments
                .iter()
                .filter(|(_, s)| {
                    // An automatic compaction takes the segments that are themselves at least
                    // as dead as its threshold (one always is when the whole is): after a burst
                    // of overwrites the old segments are nearly all dead and go for almost
                    // nothing, while the new, nearly all live ones are not copied again for a
                    // few dead bytes.
                    let worth = if full {
                        s.dead_bytes > 0 || !s.compacted
                    } else {
                        s.dead_bytes > 0
                            && s.dead_bytes as f64 >= self.opts.compaction_dead_ratio * s.len as f64
                    };
                    eligible(s) && (worth || (s.compacted && s.is_empty()))
                })
                .map(|(id, _)| *id)
                .collect();
            // Log segments go only with every older one: a sealed log segment's end is checked
            // through the header of the log segment after it (`EndCheck::FollowsLog`), so a
            // kept one whose follower was compacted away could lose its last records to a cut
            // at a record boundary unnoticed. The older ones are copied too, once: compacted
            // segments count their records instead.
            if let Some(newest) = state
                .segments
                .iter()
                .rev()
                .find(|(id, s)| !s.compacted && wanted.contains(id))
                .map(|(id, _)| *id)
            {
                for (id, s) in state.segments.range(..newest) {
                    if s.compacted {
                        continue;
                    }
                    if !eligible(s) {
                        // Never the case (log segments seal in order, and their LSNs grow),
                        // but were it, the newer log segments would have to stay.
                        let newer_logs: Vec<SegmentId> = state
                            .segments
                            .range(id..)
                            .filter(|(_, s)| !s.compacted)
                            .map(|(id, _)| *id)
                            .collect();
                        for newer in newer_logs {
                            wanted.remove(&newer);
                        }
                        break;
                    }
                    wanted.insert(*id);
                }
            }
            for (id, s) in &state.segments {
                if wanted.contains(id) {
                    horizon = horizon.max(s.max_lsn);
                    if s.compacted {
                        horizon = horizon.max(s.lsn_mark);
                    }
                    candidates.push(Candidate {
                        id: *id,
                        file: s.file.clone(),
                        salt: s.salt,
                        len: s.len,
                        has_hint: s.has_hint,
                    });
                } else if !s.is_empty() {
                    outside_min = outside_min.min(s.min_lsn);
                }
            }
            (candidates, outside_min, horizon)
        };
        if candidates.is_empty() {
            return Ok(CompactionReport::default());
        }

        let mut writer = CompactedWriter::new(self, horizon);
        for candidate in &candidates {
            self.copy_live(candidate, outside_min_lsn, &mut writer)?;
        }
        let (outputs, moved) = writer.finish()?;
        let plan = SwapPlan {
            install: outputs.iter().map(|o| o.id).collect(),
            delete: candidates.iter().map(|c| c.id).collect(),
        };
        // The copies skipped values that records in the active segment overwrote or deleted;
        // under `EveryMillis`/`Never` those records may not be synced yet. Sync them before the
        // old copies are deleted, or a power loss would lose the old and the new value both.
        if let Err(e) = self.flush().and_then(|()| self.sync_dir()) {
            CompactedWriter::abandon(&outputs, &self.dir);
            return Err(e);
        }
        // A write failed while the copies were made (the store is poisoned for writes): give
        // up rather than change the files of a store that must be reopened to recover.
        if let Some(reason) = self.poison_reason() {
            CompactedWriter::abandon(&outputs, &self.dir);
            return Err(Error::Poisoned { reason });
        }
        match swap::commit(&self.dir, &plan, &*self.opts.vfs) {
            Ok(()) => {}
            Err(swap::CommitError::NotCommitted(e)) => {
                CompactedWriter::abandon(&outputs, &self.dir);
                return Err(e);
            }
            Err(swap::CommitError::Undecided(e)) => {
                // The old segments stay on disk and in use until a reopen finishes the swap.
                self.poison(&format!("committing a compaction failed: {e}"));
                return Err(e);
            }
        }
        // The index moves to the copies a chunk at a time, so that readers and writers wait at
        // most one chunk (a whole store's entries under one lock stalled both for tens of
        // milliseconds). In between, keys point into old or new segments, both present and
        // holding the same values; the old ones leave the table only once nothing points there.
        {
            let mut state = self.state.write();
            for out in &outputs {
                state.segments.insert(out.id, out.segment.clone());
            }
        }
        for chunk in moved.chunks(INSTALL_CHUNK) {
            let mut state = self.state.write();
            for m in chunk {
                let Some(old) = m.old else { continue };
                if !state.index.replace_if(&m.key, old, m.new) {
                    // Overwritten while we copied: the copy is dead on arrival.
                    let bytes = op_disk_bytes(m.key.len(), m.new.value_len as usize);
                    state.mark_dead_put(m.new.segment, m.new.value_offset, bytes);
                }
            }
        }
        {
            let mut state = self.state.write();
            for id in &plan.delete {
                state.segments.remove(id);
            }
        }
        // The swap is committed and the state already switched: a failure from here leaves the
        // disk to recovery (which finishes the swap) and this handle must stop writing.
        swap::apply(&self.dir, &plan, &*self.opts.vfs).inspect_err(|e| {
            self.poison(&format!(
                "finishing a compaction's segment swap failed: {e}"
            ));
        })?;
        let report = CompactionReport {
            segments_compacted: candidates.len(),
            segments_written: outputs.len(),
            bytes_before: candidates.iter().map(|c| c.len).sum(),
            bytes_after: outputs.iter().map(|o| o.segment.len).sum(),
        };
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(?report, "compaction finished");
        Ok(report)
    }

    fn candidate_entries(&self, candidate: &Candidate) -> Result<CandidateEntries> {
        if candidate.has_hint {
            if let Some(bytes) = hint::read_bytes(&self.dir, candidate.id)? {
                let mut found = CandidateEntries::default();
                match hint::visit(candidate.id, &bytes, |e| found.push(&e)) {
                    Ok(_) => return Ok(found),
                    Err(reason) => hint::warn_damaged(&self.dir, candidate.id, &reason),
                }
            }
        }
        let path = segment_path(&self.dir, candidate.id);
        let mut found = CandidateEntries::default();
        let (_, damage) = visit_segment(&candidate.file, candidate.salt, candidate.len, |e| {
            found.push(&e)
        })
        .ctx(|| format!("scanning {} for compaction", path.display()))?;
        if let Some(crate::wal::recovery::Damage { offset, reason, .. }) = damage {
            return Err(Error::Corrupt {
                path,
                offset,
                reason,
            });
        }
        Ok(found)
    }

    /// Copies the live puts and the still-needed tombstones of one candidate.
    fn copy_live(
        &self,
        candidate: &Candidate,
        outside_min_lsn: Lsn,
        writer: &mut CompactedWriter,
    ) -> Result<()> {
        let found = self.candidate_entries(candidate)?;
        let dead = self.dead_puts(candidate, &found);
        let mut buf = Vec::new();
        for chunk in found.entries.chunks(LIVENESS_CHUNK) {
            let keep: Vec<&CandidateEntry> = {
                // Puts are told by the dead set; only tombstones need the index (one stays
                // while its key is absent and older values of the key may remain elsewhere),
                // so most chunks take no lock at all.
                let state = chunk.iter().any(|e| e.is_delete).then(|| self.state.read());
                chunk
                    .iter()
                    .filter(|e| match &state {
                        _ if !e.is_delete => dead.binary_search(&e.value_offset).is_err(),
                        Some(state) => {
                            state.index.get(found.key(e)).is_none() && outside_min_lsn < e.lsn
                        }
                        None => false,
                    })
                    .collect()
            };
            for e in keep {
                let key = found.key(e);
                if e.is_delete {
                    writer.append_delete(key)?;
                    continue;
                }
                let old = Location {
                    segment: candidate.id,
                    value_offset: e.value_offset,
                    value_len: e.value_len,
                    lsn: e.lsn,
                };
                // The op is copied as it is, once its checksum is verified, so damage is
                // reported here rather than laundered into a copy with a valid checksum.
                let op = old.op_in(&*candidate.file, key, &self.dir, &mut buf)?;
                writer.append_encoded(op, key.len(), old)?;
            }
        }
        Ok(())
    }

    /// The value offsets of the candidate's dead puts, sorted (see
    /// [`crate::index::Segment::dead_offsets`]). Taken now: a put that dies later is copied,
    /// and its copy found dead when the index moves to the copies.
    fn dead_puts(&self, candidate: &Candidate, found: &CandidateEntries) -> Vec<u32> {
        let state = self.state.read();
        let mut dead = state
            .segments
            .get(&candidate.id)
            .map(|s| s.dead_offsets.clone())
            .unwrap_or_default();
        if cfg!(debug_assertions) {
            // What compaction's safety rests on (see `Segment::dead_offsets`), checked in every
            // debug-build test: under this lock, a put is counted dead exactly when the index
            // does not point at it.
            let counted: std::collections::HashSet<u32> = dead.iter().copied().collect();
            for e in found.entries.iter().filter(|e| !e.is_delete) {
                let current = state.index.get(found.key(e));
                let pointed_at = current
                    .is_some_and(|l| l.segment == candidate.id && l.value_offset == e.value_offset);
                debug_assert!(
                    pointed_at != counted.contains(&e.value_offset),
                    "segment {} offset {}: the index {} it, the dead set {} it",
                    candidate.id,
                    e.value_offset,
                    if pointed_at {
                        "points at"
                    } else {
                        "does not point at"
                    },
                    if pointed_at { "counts" } else { "misses" },
                );
            }
        }
        drop(state);
        dead.sort_unstable();
        dead
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{compaction_wanted, writes_stream_in};
    use crate::Options;

    #[test]
    fn a_stream_of_writes_is_judged_by_its_rate() {
        let opts = Options::new()
            .segment_bytes(16 << 20)
            .maintenance_interval(Duration::from_millis(100));
        let ms = Duration::from_millis;
        // 1 MiB per 100 ms is a stream; the same MiB over 10 s (a check delayed by a long
        // compaction) is not.
        assert!(writes_stream_in(1 << 20, ms(100), &opts));
        assert!(!writes_stream_in(1 << 20, ms(10_000), &opts));
        assert!(writes_stream_in(100 << 20, ms(10_000), &opts));
        // A check that came early still needs a whole interval's worth.
        assert!(!writes_stream_in(300 << 10, ms(10), &opts));
        assert!(!writes_stream_in(0, ms(100), &opts));
    }

    #[test]
    fn automatic_compaction_waits_for_a_burst_unless_dead_bytes_pile_up() {
        let opts = Options::new()
            .compaction_dead_ratio(0.4)
            .compaction_min_dead_bytes(1000);
        // Idle: the ratio and the minimum decide.
        assert!(!compaction_wanted(999, 1000, false, &opts));
        assert!(!compaction_wanted(3_999, 10_000, false, &opts));
        assert!(compaction_wanted(4_000, 10_000, false, &opts));
        // While writes stream in: not at the ratio, only halfway from it to all dead (0.7).
        assert!(!compaction_wanted(4_000, 10_000, true, &opts));
        assert!(!compaction_wanted(6_999, 10_000, true, &opts));
        assert!(compaction_wanted(7_000, 10_000, true, &opts));
        // Nothing sealed, nothing to do.
        assert!(!compaction_wanted(0, 0, false, &opts));
    }
}
