//! The commit leader: writes a group of records, syncs once, publishes them to the index and
//! to the commit hook.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::index::{Location, Segment};
use crate::store::Inner;
use crate::wal::hint::HintBuilder;
use crate::wal::record::{stamp_synced, EncodedRecord};
use crate::wal::segment::{
    new_salt, segment_path, EndCheck, SegmentHeader, SegmentId, SEGMENT_HEADER_BYTES,
};
use crate::wal::writer::{ActiveSegment, LsnRule, Outcome, Pending};
use crate::{Lsn, SyncPolicy};

/// Zeros written ahead of the active segment's end at a time: 1 MiB.
pub(crate) const PREALLOCATE_BYTES: u64 = 1 << 20;

/// Completes a commit group's publication turn if its leader unwinds (a bug), poisoning the
/// store, so that later groups do not wait for it forever.
struct TurnGuard<'a> {
    inner: &'a Inner,
    turn: u64,
    armed: bool,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.poison("internal: a commit leader panicked");
            self.inner.sequencer.done(self.turn);
        }
    }
}

/// Buffers a commit leader reuses from one group to the next (only one leader runs at a
/// time), so that a commit does not allocate them anew.
#[derive(Default)]
pub(crate) struct LeaderScratch {
    placed: Vec<Placed>,
    buf: Vec<u8>,
}

/// Largest write buffer kept for the next group; a rare huge group's is freed.
const MAX_SCRATCH_BYTES: usize = 4 << 20;

/// A record placed in the log by the current group.
struct Placed {
    ticket: u64,
    /// Applied from a master (`apply_replicated`): the commit hook is not told of it.
    replicated: bool,
    record: EncodedRecord,
    lsn: Lsn,
    segment: u32,
    offset: u64,
}

impl Inner {
    /// Leads one commit group; returns a result per pending record.
    ///
    /// The group is written under the active segment's lock, synced, then published (index,
    /// last LSN, hook) when the sequencer says every earlier group has been, so a reader never
    /// sees a write before it is durable, nor one group before an earlier one. The leader
    /// keeps the write leadership until it returns: handing it over before the sync (so the
    /// next group writes meanwhile) was measured and cost 20-30% of SET throughput under
    /// redis-benchmark with 50 clients, since concurrent fdatasyncs on one file do not overlap
    /// on the disks measured here.
    pub(crate) fn lead_group(
        &self,
        group: &mut Vec<Pending>,
        results: &mut Vec<(u64, Result<Outcome>)>,
    ) {
        // The group is the whole queue: its tickets are one contiguous range.
        let tickets = match (group.first(), group.last()) {
            (Some(a), Some(b)) => a.ticket..b.ticket + 1,
            _ => 0..0,
        };
        let mut scratch = self.leader_scratch.lock();
        let LeaderScratch { placed, buf } = &mut *scratch;
        placed.clear(); // empty unless an earlier leader unwound (a bug)
        let mut sealed = Vec::new();
        let (mut turn_guard, written) = {
            let mut active = self.active.lock();
            // Armed before anything that could unwind: a leader that panics while writing
            // must still end its turn, or every later group waits for it for ever.
            let turn_guard = TurnGuard {
                inner: self,
                turn: self.sequencer.take_turn(),
                armed: true,
            };
            let written = match self.poison_reason() {
                Some(reason) => Err(Error::Poisoned { reason }),
                None => self
                    .place_and_write(&mut active, group, placed, buf, results, &mut sealed)
                    .map(|()| (active.file.clone(), active.id)),
            };
            (turn_guard, written)
        };
        let turn = turn_guard.turn;
        let synced = written.and_then(|(file, id)| {
            if self.opts.sync_policy == SyncPolicy::Always {
                if let Some(last) = placed.last() {
                    self.timed_sync(&*file, id)?;
                    self.synced_lsn.fetch_max(last.lsn, Ordering::Release);
                }
            }
            Ok(())
        });
        self.sequencer.wait_for(turn);
        // An earlier group's failure poisons this one too: its records follow unsynced ones.
        let outcome = synced.and_then(|()| match self.poison_reason() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        });
        match outcome {
            Ok(()) => {
                self.publish(placed);
                self.finish_seal(&sealed);
                self.sequencer.done(turn);
                results.extend(
                    placed
                        .iter()
                        .map(|p| (p.ticket, Ok(Outcome::Committed(p.lsn)))),
                );
            }
            Err(e) => {
                let reason = e.to_string();
                self.poison(&reason);
                self.sequencer.done(turn);
                // Every record without an answer fails: those placed and those the failure
                // (e.g. of a segment roll) kept from being placed at all.
                let answered: std::collections::HashSet<u64> =
                    results.iter().map(|(t, _)| *t).collect();
                results.extend(tickets.filter(|t| !answered.contains(t)).map(|t| {
                    (
                        t,
                        Err(Error::Poisoned {
                            reason: reason.clone(),
                        }),
                    )
                }));
            }
        }
        turn_guard.armed = false;
        placed.clear();
        if buf.capacity() > MAX_SCRATCH_BYTES {
            *buf = Vec::new();
        }
    }

    /// Stamps LSNs, rolls segments as needed and writes the group. Records that need no write
    /// (duplicates, gaps) get their result in `results` right away.
    fn place_and_write(
        &self,
        active: &mut ActiveSegment,
        group: &mut Vec<Pending>,
        placed: &mut Vec<Placed>,
        buf: &mut Vec<u8>,
        results: &mut Vec<(u64, Result<Outcome>)>,
        sealed: &mut Vec<SegmentId>,
    ) -> Result<()> {
        let mut lsn = active.written_lsn;
        let group_bytes = group.iter().map(|p| p.record.bytes.len()).sum::<usize>();
        buf.clear();
        buf.reserve(group_bytes.min(self.opts.segment_bytes as usize));
        for mut pending in group.drain(..) {
            let next = lsn + 1;
            match pending.rule {
                LsnRule::Next => {}
                LsnRule::Exactly(l) if l < next => {
                    results.push((pending.ticket, Ok(Outcome::Duplicate)));
                    continue;
                }
                LsnRule::Exactly(l) if l > next => {
                    results.push((
                        pending.ticket,
                        Err(Error::LsnGap {
                            expected: next,
                            got: l,
                        }),
                    ));
                    continue;
                }
                LsnRule::Exactly(_) => {}
            }
            pending.record.stamp(next);
            let rec_len = pending.record.bytes.len() as u64;
            let end = active.len + buf.len() as u64;
            if end > SEGMENT_HEADER_BYTES && end + rec_len > self.opts.segment_bytes {
                self.write_buf(active, buf)?;
                sealed.push(self.roll(active, lsn)?);
            }
            // Into the hint before the write: if the write fails, the store is poisoned and
            // no roll ever finishes this hint, so it never lists a record the log lacks.
            let offset = active.len + buf.len() as u64;
            for span in &pending.record.spans {
                active.hint.push(
                    pending.record.key(span),
                    next,
                    (offset + u64::from(span.value_start)) as u32,
                    span.value_len,
                    span.is_delete,
                );
            }
            placed.push(Placed {
                ticket: pending.ticket,
                replicated: matches!(pending.rule, LsnRule::Exactly(_)),
                lsn: next,
                segment: active.id,
                offset,
                record: pending.record,
            });
            if let Some(p) = placed.last() {
                let at = buf.len();
                buf.extend_from_slice(&p.record.bytes);
                // Read per record: a roll earlier in this group synced everything before it.
                let synced = self.synced_lsn.load(Ordering::Acquire);
                stamp_synced(&mut buf[at..], synced, active.salt);
            }
            lsn = next;
        }
        self.write_buf(active, buf)?;
        // Only now: a failed write must not count as written (a later roll stamps it).
        active.written_lsn = lsn;
        Ok(())
    }

    fn write_buf(&self, active: &mut ActiveSegment, buf: &mut Vec<u8>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = active.len + buf.len() as u64;
        if end > active.allocated {
            self.preallocate(active, end)?;
        }
        active
            .file
            .write_all_at(buf, active.len)
            .ctx(|| format!("appending to segment {}", active.id))?;
        active.len += buf.len() as u64;
        active.unsynced = true;
        self.counters
            .appended_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        buf.clear();
        Ok(())
    }

    /// Extends the active segment with zeros past `end`. An `fdatasync` after writing into
    /// allocated, already written blocks need not commit file-system metadata (the size does
    /// not change), which makes the durable write of a small record markedly cheaper.
    fn preallocate(&self, active: &mut ActiveSegment, end: u64) -> Result<()> {
        let target = (end + PREALLOCATE_BYTES).min(end.max(self.opts.segment_bytes));
        active
            .file
            .preallocate(active.allocated, target - active.allocated)
            .ctx(|| format!("preallocating segment {}", active.id))?;
        active.allocated = target;
        active.unsynced = true;
        Ok(())
    }

    /// Cuts the preallocated zeros off the active segment, so that a closed store does not
    /// keep them on disk (a reopened one preallocates again at its first write). Losing the
    /// cut in a crash is harmless: recovery reads a zero tail as the log's clean end.
    pub(crate) fn trim_active(&self) -> Result<()> {
        trim_preallocation(&mut self.active.lock())
    }

    /// `fdatasync`s the active segment if it has unsynced bytes.
    pub(crate) fn sync_active(&self, active: &mut ActiveSegment) -> Result<()> {
        if !active.unsynced {
            return Ok(());
        }
        self.timed_sync(&*active.file, active.id)?;
        active.unsynced = false;
        Ok(())
    }

    /// `fdatasync`s a log segment file, counting it and tracking how long syncs take. A
    /// failure poisons the store before any other sync of the log can run: the kernel reports
    /// a failed writeback to one `fsync` only and marks its pages clean, so a commit leader
    /// syncing right after a failed `flush()` would see success for bytes that were lost,
    /// and acknowledge them unless the poison is already there when its sync returns.
    pub(crate) fn timed_sync(&self, file: &dyn crate::io::FileIo, id: SegmentId) -> Result<()> {
        let _one_sync_at_a_time = self.sync_lock.lock();
        let started = std::time::Instant::now();
        if let Err(e) = file.sync_data().ctx(|| format!("syncing segment {id}")) {
            self.poison(&e.to_string());
            return Err(e);
        }
        let took = started.elapsed().as_nanos() as u64;
        let avg = self.counters.sync_ewma_ns.load(Ordering::Relaxed);
        let avg = if avg == 0 { took } else { (avg * 7 + took) / 8 };
        self.counters.sync_ewma_ns.store(avg, Ordering::Relaxed);
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs and trims the active segment and starts a new one whose records follow
    /// `last_lsn`. Returns the old segment's id, which the caller passes to
    /// [`finish_seal`](Self::finish_seal) once the records written to it are published.
    pub(crate) fn roll(&self, active: &mut ActiveSegment, last_lsn: Lsn) -> Result<SegmentId> {
        trim_preallocation(active)?;
        active.unsynced = true; // a sealed segment is always synced, whatever the policy
        self.sync_active(active)?;
        self.synced_lsn.fetch_max(last_lsn, Ordering::Release);
        let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let sealed = active.id;
        let header = SegmentHeader {
            id,
            compacted: false,
            lsn_mark: last_lsn,
            end_check: EndCheck::FollowsLog(sealed),
            salt: new_salt(),
        };
        let file = self.create_active_segment_file(id, &header)?;
        let built_hint =
            std::mem::replace(&mut active.hint, HintBuilder::unknown()).finish(active.len);
        {
            let mut state = self.state.write();
            if let Some(seg) = state.segments.get_mut(&sealed) {
                seg.len = active.len;
                seg.built_hint = built_hint;
            }
            state
                .segments
                .insert(id, Segment::fresh_log(file.clone(), &header));
        }
        *active = ActiveSegment::fresh(file, &header);
        self.active_segment.store(id, Ordering::Release);
        Ok(sealed)
    }

    /// Starts a new active segment when the store was reopened on a well-filled one, sealing
    /// (and so mapping) the old: its values are then read from the map rather than with one
    /// `pread` each, as Bitcask opens a new active file on every start. A nearly empty one is
    /// kept, so that frequent reopens of a small store leave no trail of tiny segments.
    /// Returns the rolled segment, which [`finish_seal`](Self::finish_seal) seals once the
    /// background threads that write its hint run.
    pub(crate) fn roll_recovered_tail(&self) -> Result<Option<SegmentId>> {
        let mut active = self.active.lock();
        if active.len < SEGMENT_HEADER_BYTES + self.opts.segment_bytes / 16 {
            return Ok(None);
        }
        let last_lsn = active.written_lsn;
        self.roll(&mut active, last_lsn).map(Some)
    }

    /// Marks rolled segments sealed (compaction may now take them) and asks for their hints.
    pub(crate) fn finish_seal(&self, ids: &[SegmentId]) {
        if ids.is_empty() {
            return;
        }
        {
            let mut state = self.state.write();
            for id in ids {
                if let Some(seg) = state.segments.get_mut(id) {
                    seg.sealed = true;
                    crate::io::seal_for_reads(&*seg.file);
                }
            }
        }
        for id in ids {
            self.schedule_hint(*id);
        }
    }

    /// Creates a segment file with its header, durably (file and directory synced).
    pub(crate) fn create_segment_file(
        &self,
        id: u32,
        header: &SegmentHeader,
    ) -> Result<Arc<dyn crate::io::FileIo>> {
        let path = segment_path(&self.dir, id);
        let file = self
            .opts
            .vfs
            .open(&path, true)
            .ctx(|| format!("creating {}", path.display()))?;
        file.write_all_at(&header.encode(), 0)
            .ctx(|| format!("writing header of {}", path.display()))?;
        file.sync_data()
            .ctx(|| format!("syncing {}", path.display()))?;
        self.sync_dir()?;
        Ok(file)
    }

    /// Creates the next active segment: a segment file whose writes are also kept in memory
    /// (see [`CachedTail`](crate::tail_cache::CachedTail)) until it is sealed.
    pub(crate) fn create_active_segment_file(
        &self,
        id: u32,
        header: &SegmentHeader,
    ) -> Result<Arc<dyn crate::io::FileIo>> {
        let file = self.create_segment_file(id, header)?;
        Ok(crate::tail_cache::CachedTail::wrap(
            file,
            SEGMENT_HEADER_BYTES,
            &self.tail_chunks,
        ))
    }

    /// Makes the group visible: index, segment table, last LSN, then the commit hook.
    fn publish(&self, placed: &[Placed]) {
        let Some(last) = placed.last() else {
            return;
        };
        {
            let mut state = self.state.write();
            for p in placed {
                for span in &p.record.spans {
                    let key = p.record.key(span);
                    if span.is_delete {
                        state.apply_delete(key, p.segment);
                        state.last_delete_lsn = p.lsn;
                    } else {
                        let loc = Location {
                            segment: p.segment,
                            value_offset: (p.offset + u64::from(span.value_start)) as u32,
                            value_len: span.value_len,
                            lsn: p.lsn,
                        };
                        state.apply_put(key, loc);
                    }
                }
                if let Some(seg) = state.segments.get_mut(&p.segment) {
                    seg.note_lsn(p.lsn);
                    seg.len = seg.len.max(p.offset + p.record.bytes.len() as u64);
                }
            }
            if !self.writes_claimed.load(Ordering::Acquire)
                && self.first_unclaimed_write.load(Ordering::Relaxed) == 0
            {
                if let Some(local) = placed.iter().find(|p| !p.replicated) {
                    self.first_unclaimed_write
                        .store(local.lsn, Ordering::Release);
                }
            }
            self.last_lsn.store(last.lsn, Ordering::Release);
        }
        if let Some(hook) = self.hook() {
            for p in placed.iter().filter(|p| !p.replicated) {
                let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    hook.committed_bytes(p.lsn, &p.record.bytes);
                }));
                if call.is_err() {
                    // The write is committed and published; a hook that panics must not take
                    // the commit path down with it (replicas catch up from the log).
                    tracing::error!(lsn = p.lsn, "the commit hook panicked");
                }
            }
        }
    }
}

/// Cuts the zeros preallocated past the active segment's last record (to be synced).
fn trim_preallocation(active: &mut ActiveSegment) -> Result<()> {
    if active.allocated > active.len {
        active
            .file
            .set_len(active.len)
            .ctx(|| format!("trimming the preallocated tail of segment {}", active.id))?;
        active.allocated = active.len;
        active.unsynced = true;
    }
    Ok(())
}
