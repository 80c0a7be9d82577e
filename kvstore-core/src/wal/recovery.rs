//! Opening a store: reading segment headers and hint files, scanning what has no hint,
//! truncating a torn tail of the newest log segment, and rebuilding the index.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::index::{DeadOps, Location, Segment, State};
use crate::io::{FileIo, Vfs};
use crate::keymap::{KeyMap, KeyMapBuilder};
use crate::options::{Options, RecoveryMode};
use crate::tail_cache::{CachedTail, TailChunks};
use crate::wal::hint::{self, EntryRef, Hint, HintBuilder};
use crate::wal::reader::{Next, RecordReader};
use crate::wal::record::{header_crc_holds, op_disk_bytes, synced_before, RECORD_HEADER_BYTES};
use crate::wal::segment::{
    hint_path, parse_hint_name, parse_segment_name, segment_path, EndCheck, SegmentHeader,
    SegmentId, SEGMENT_HEADER_BYTES,
};
use crate::wal::writer::ActiveSegment;
use crate::Lsn;

/// What `open` needs to start.
pub(crate) struct Recovered {
    pub state: State,
    pub active: ActiveSegment,
    pub last_lsn: Lsn,
    pub next_segment_id: SegmentId,
    pub segments_without_hint: Vec<SegmentId>,
}

/// Whether a whole valid record in `(damaged, end)` of `file` (a record header whose
/// checksum holds, followed by a body that decodes and checks) says the log was synced past
/// `before` when it was written: then the bytes at `damaged`, which hold the records after
/// `before`, had reached the disk, and their damage is not a torn write.
///
/// Between valid records every offset is tried, since the damage may have cut the log
/// anywhere; from a valid record on, the records that follow it are read in turn, as a scan
/// of the log reads them, until one is damaged (and offsets are tried again past it) or the
/// log ends. So the rest of the file is read about once, however many records follow a hole.
fn synced_record_after(
    file: &Arc<dyn FileIo>,
    salt: u32,
    damaged: u64,
    end: u64,
    before: Lsn,
) -> std::io::Result<bool> {
    let mut from = damaged + 1;
    while let Some(start) = next_valid_record(file, salt, from, end)? {
        let mut reader = RecordReader::new(file.clone(), salt, start, end);
        loop {
            match reader.next_ref()? {
                Next::Record(record) => {
                    if synced_before(record.bytes) > before {
                        return Ok(true);
                    }
                }
                Next::End => return Ok(false),
                Next::Damaged { offset, .. } => {
                    from = offset + 1;
                    break;
                }
            }
        }
    }
    Ok(false)
}

/// Where the first whole valid record at or after `from` (and before `end`) of `file`, a
/// segment of salt `salt`, starts, trying every offset: a record header whose checksum
/// holds, followed by a body that decodes and checks.
fn next_valid_record(
    file: &Arc<dyn FileIo>,
    salt: u32,
    from: u64,
    end: u64,
) -> std::io::Result<Option<u64>> {
    const WINDOW: u64 = 1 << 20;
    let header = RECORD_HEADER_BYTES as u64;
    let mut window_start = from;
    let mut buf = Vec::new();
    while window_start + header <= end {
        let window_end = (window_start + WINDOW + header).min(end);
        buf.resize((window_end - window_start) as usize, 0);
        file.read_exact_at(&mut buf, window_start)?;
        for at in 0..buf.len().saturating_sub(RECORD_HEADER_BYTES - 1) {
            let h = &buf[at..at + RECORD_HEADER_BYTES];
            if h.iter().all(|b| *b == 0) || !header_crc_holds(h, salt) {
                continue;
            }
            let body = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as u64;
            let start = window_start + at as u64;
            if start + header + body > end || header + body > crate::MAX_RECORD_BYTES as u64 {
                continue;
            }
            let mut record = vec![0u8; (header + body) as usize];
            file.read_exact_at(&mut record, start)?;
            if crate::wal::record::decode(&record, salt).is_ok() {
                return Ok(Some(start));
            }
        }
        window_start += WINDOW;
    }
    Ok(None)
}

/// Where and why a scan stopped before the end of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub offset: u64,
    pub reason: String,
    /// Looks like an interrupted write (cut short or zeroed) rather than altered bytes.
    pub torn: bool,
}

/// Scans a segment's records into hint entries. A damaged record ends the scan; what happens
/// then is the caller's choice, so the damage is returned beside the entries.
pub(crate) fn scan_segment(
    file: &Arc<dyn FileIo>,
    salt: u32,
    file_len: u64,
) -> std::io::Result<(Hint, Option<Damage>)> {
    let mut entries = Vec::new();
    let (segment_len, damage) =
        visit_segment(file, salt, file_len, |e| entries.push(e.to_entry()))?;
    Ok((
        Hint {
            segment_len,
            entries,
        },
        damage,
    ))
}

/// Visits the operations of a segment's valid records in file order, as its hint would list
/// them, borrowing each key from the read buffer (opening a store scans every segment that has
/// no hint; a copy per key would be most of that work). A damaged record ends the scan.
/// Returns where the valid records end, and the damage if a record is damaged.
pub(crate) fn visit_segment(
    file: &Arc<dyn FileIo>,
    salt: u32,
    file_len: u64,
    visit: impl FnMut(EntryRef<'_>),
) -> std::io::Result<(u64, Option<Damage>)> {
    let scan = visit_segment_counting(file, salt, file_len, visit)?;
    Ok((scan.len, scan.damage))
}

/// What [`visit_segment_counting`] found besides the operations.
struct Scan {
    /// Where the valid records end.
    len: u64,
    records: u64,
    /// The last valid record's LSN, also when it holds no operation (a replica can apply
    /// such a record), which the operations alone would not show.
    last_lsn: Option<Lsn>,
    damage: Option<Damage>,
}

/// [`visit_segment`], also counting the valid records and noting the last one's LSN.
fn visit_segment_counting(
    file: &Arc<dyn FileIo>,
    salt: u32,
    file_len: u64,
    mut visit: impl FnMut(EntryRef<'_>),
) -> std::io::Result<Scan> {
    let mut reader = RecordReader::new(file.clone(), salt, SEGMENT_HEADER_BYTES, file_len);
    let mut records = 0;
    let mut last_lsn = None;
    let damage = loop {
        match reader.next_ref()? {
            Next::Record(rec) => {
                records += 1;
                last_lsn = Some(rec.lsn);
                for span in &rec.spans {
                    let key_start = span.key_start as usize;
                    visit(EntryRef {
                        key: &rec.bytes[key_start..key_start + span.key_len as usize],
                        lsn: rec.lsn,
                        value_offset: (rec.offset + u64::from(span.value_start)) as u32,
                        value_len: span.value_len,
                        is_delete: span.is_delete,
                    });
                }
            }
            Next::End => break None,
            Next::Damaged {
                offset,
                reason,
                torn,
            } => {
                break Some(Damage {
                    offset,
                    reason,
                    torn,
                })
            }
        }
    };
    Ok(Scan {
        len: reader.position(),
        records,
        last_lsn,
        damage,
    })
}

/// Checks that every sealed log segment still reaches the LSN the log segment started after
/// it begins at (its header's `EndCheck::FollowsLog`): one that lost its last records, cut
/// at a record boundary, otherwise scans as a clean end. A predecessor compacted away has
/// nothing to check. In salvage mode a shortfall is logged and accepted for good: the later
/// segment's header stops naming the cut one, so that later opens in the normal mode agree.
fn check_log_continuity(
    dir: &Path,
    vfs: &dyn Vfs,
    headers: &BTreeMap<SegmentId, SegmentHeader>,
    state: &mut State,
    salvage: bool,
) -> Result<()> {
    for (id, header) in headers {
        let EndCheck::FollowsLog(sealed) = header.end_check else {
            continue;
        };
        let (Some(segment), Some(sealed_header)) =
            (state.segments.get(&sealed), headers.get(&sealed))
        else {
            continue;
        };
        if sealed_header.compacted {
            continue;
        }
        let sealed_len = segment.len;
        let mut sealed_last = if segment.is_empty() {
            sealed_header.lsn_mark
        } else {
            segment.max_lsn.max(sealed_header.lsn_mark)
        };
        if sealed_last < header.lsn_mark && segment.has_hint {
            // A hint lists operations: a last record without any (a replica may apply one)
            // shows only in the segment itself. The segment learns it too, or `wal_since`
            // would take the LSNs after its last operation for a hole in the log.
            let scan = visit_segment_counting(&segment.file, segment.salt, segment.len, |_| {})
                .ctx(|| format!("scanning {}", segment_path(dir, sealed).display()))?;
            if let Some(last) = scan.last_lsn {
                sealed_last = sealed_last.max(last);
                if let Some(segment) = state.segments.get_mut(&sealed) {
                    segment.note_lsn(last);
                }
            }
        }
        if sealed_last >= header.lsn_mark {
            continue;
        }
        let reason = format!(
            "log segment {sealed} ends at LSN {sealed_last}, but log segment {id}, started \
             when it was sealed, follows LSN {}: the records between are missing",
            header.lsn_mark
        );
        if !salvage {
            return Err(Error::Corrupt {
                path: segment_path(dir, sealed),
                offset: sealed_len,
                reason,
            });
        }
        tracing::error!(%reason, "salvage: opening without the missing records");
        let accepted = SegmentHeader {
            end_check: EndCheck::None,
            ..*header
        };
        let path = segment_path(dir, *id);
        rewrite_header(vfs, &path, &accepted)
            .ctx(|| format!("rewriting the header of {}", path.display()))?;
    }
    Ok(())
}

/// Writes `header` over the header of the segment at `path`, durably, through a handle of its
/// own (the one reads use may be mapped): what salvage accepted stays accepted.
fn rewrite_header(vfs: &dyn Vfs, path: &Path, header: &SegmentHeader) -> std::io::Result<()> {
    let file = vfs.open(path, false)?;
    file.write_all_at(&header.encode(), 0)?;
    file.sync_data()
}

/// Every operation found in the segments, gathered so that the index can be built by sorting
/// rather than by one map update per operation. Keys live back to back in one arena.
#[derive(Default)]
struct Gathered {
    arena: Vec<u8>,
    ops: Vec<GatheredOp>,
}

#[derive(Clone, Copy)]
struct GatheredOp {
    /// The key's first 8 bytes, big-endian: most comparisons end here.
    prefix: u64,
    key_start: usize,
    key_len: u32,
    lsn: Lsn,
    segment: SegmentId,
    value_offset: u32,
    value_len: u32,
    is_delete: bool,
}

/// Bytes per operation assumed when guessing how many operations a segment without a hint
/// holds: a 16-byte key and a 100-byte value take 123 in a batch, 143 alone. A guess that
/// comes out high costs only address space (pages never written are never faulted in); one
/// that comes out low costs a copy of everything gathered so far.
const GUESSED_OP_BYTES: u64 = 96;

impl Gathered {
    /// Room for `ops` operations with 16-byte keys, or for fewer if that much memory cannot be
    /// reserved (the vectors then grow as needed).
    fn with_capacity(ops: usize) -> Self {
        let mut gathered = Gathered::default();
        if gathered.ops.try_reserve_exact(ops).is_err() {
            gathered.ops = Vec::new();
        }
        if gathered
            .arena
            .try_reserve_exact(ops.saturating_mul(16))
            .is_err()
        {
            gathered.arena = Vec::new();
        }
        gathered
    }

    fn push(&mut self, segment: SegmentId, e: EntryRef<'_>) {
        let mut prefix = [0u8; 8];
        let n = e.key.len().min(8);
        prefix[..n].copy_from_slice(&e.key[..n]);
        self.ops.push(GatheredOp {
            prefix: u64::from_be_bytes(prefix),
            key_start: self.arena.len(),
            key_len: e.key.len() as u32,
            lsn: e.lsn,
            segment,
            value_offset: e.value_offset,
            value_len: e.value_len,
            is_delete: e.is_delete,
        });
        self.arena.extend_from_slice(e.key);
    }

    fn key(&self, op: &GatheredOp) -> &[u8] {
        &self.arena[op.key_start..op.key_start + op.key_len as usize]
    }

    /// Forgets everything pushed after `mark` (a hint that turned out damaged midway).
    fn truncate(&mut self, mark: (usize, usize)) {
        self.arena.truncate(mark.0);
        self.ops.truncate(mark.1);
    }

    fn mark(&self) -> (usize, usize) {
        (self.arena.len(), self.ops.len())
    }

    /// Resolves every key to its newest operation and builds the index. The newest is the one
    /// with the highest LSN; among equal LSNs (the ops of one batch, or a compaction's copy of
    /// an op) the one read last, since segments are read in id order and each in file order.
    /// Returns the index, live bytes and dead bytes per segment.
    ///
    /// A large store is resolved in two halves of the key space on two threads (opening is
    /// mostly this sort); the halves split at a sampled median of the keys' 8-byte prefixes,
    /// so every version of a key lands in the same half, and the left half's index is followed
    /// by the right's.
    fn resolve(mut self) -> (KeyMap, u64, BTreeMap<SegmentId, DeadOps>) {
        let unsorted = std::mem::take(&mut self.ops);
        let tuples = || {
            unsorted
                .iter()
                .enumerate()
                .map(|(i, op)| (op.prefix, op.lsn, i as u32))
        };
        let resolved = match median_prefix(&unsorted) {
            Some(split) if unsorted.len() >= PARALLEL_RESOLVE_OPS => {
                // Sized by a count first: growing them by doubling faulted in and copied
                // twice the memory, a good part of a cold open.
                let left_len = unsorted.iter().filter(|op| op.prefix < split).count();
                let mut left = Vec::with_capacity(left_len);
                let mut right = Vec::with_capacity(unsorted.len() - left_len);
                for t in tuples() {
                    if t.0 < split {
                        left.push(t);
                    } else {
                        right.push(t);
                    }
                }
                std::thread::scope(|scope| {
                    let this = &self;
                    let unsorted = &unsorted;
                    let left_half = std::thread::Builder::new()
                        .name("kvstore-recovery".into())
                        .spawn_scoped(scope, move || this.resolve_part(unsorted, left));
                    let right = self.resolve_part(unsorted, right);
                    let left = match left_half {
                        Ok(handle) => handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        Err(e) => {
                            // No second thread: the left half is resolved here instead. It
                            // was moved into the failed spawn, so it is rebuilt.
                            tracing::debug!(error = %e, "resolving the index on one thread");
                            self.resolve_part(unsorted, tuples().filter(|t| t.0 < split).collect())
                        }
                    };
                    left.append(right)
                })
            }
            _ => self.resolve_part(&unsorted, tuples().collect()),
        };
        drop(unsorted);
        (resolved.index, resolved.live_bytes, resolved.dead)
    }

    /// Resolves the operations `part` names (a range of the key space, as (prefix, LSN, index
    /// into `unsorted`) tuples) into an index of that range.
    fn resolve_part(&self, unsorted: &[GatheredOp], part: Vec<(u64, Lsn, u32)>) -> Resolved {
        // Radix-sort (prefix, reading position) pairs by prefix (stable, so reading order
        // survives), then order each run of equal prefixes by whole key, LSN and reading
        // position. Runs are short: mostly one key's versions.
        // Large transient buffers are freed only at the end, after the index is built: glibc
        // raises its mmap threshold whenever a mapped chunk is freed, and buffers allocated
        // after that would come from the heap and stay resident after recovery.
        let mut scratch = Vec::new();
        let mut order = radix_sort_by_prefix(part, &mut scratch);
        let mut i = 0;
        while i < order.len() {
            let mut j = i + 1;
            while j < order.len() && order[j].0 == order[i].0 {
                j += 1;
            }
            if j - i > 1 {
                order[i..j].sort_unstable_by(|a, b| {
                    let (ka, kb) = (
                        self.key(&unsorted[a.2 as usize]),
                        self.key(&unsorted[b.2 as usize]),
                    );
                    ka.cmp(kb).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
                });
            }
            i = j;
        }
        let op = |n: usize| &unsorted[order[n].2 as usize];
        let mut dead: BTreeMap<SegmentId, DeadOps> = BTreeMap::new();
        let mut live_bytes = 0;
        let mut index = KeyMapBuilder::default();
        let mut i = 0;
        while i < order.len() {
            // In key order, the operations and their keys lie all over memory: two cache
            // misses each, which dominated opening. Loading them some steps ahead (the
            // operation first, its key once the operation is in) keeps several in flight.
            if let Some(ahead) = order.get(i + 2 * PREFETCH_AHEAD) {
                crate::io::prefetch(unsorted, ahead.2 as usize);
            }
            if let Some(ahead) = order.get(i + PREFETCH_AHEAD) {
                crate::io::prefetch(&self.arena, unsorted[ahead.2 as usize].key_start);
            }
            let first = op(i);
            let key = self.key(first);
            let mut j = i + 1;
            while j < order.len() && op(j).prefix == first.prefix && self.key(op(j)) == key {
                j += 1;
            }
            for n in i..j - 1 {
                let older = op(n);
                let entry = dead.entry(older.segment).or_default();
                let bytes = op_disk_bytes(key.len(), older.value_len as usize);
                if older.is_delete {
                    entry.bytes += bytes;
                } else {
                    entry.put(older.value_offset, bytes);
                }
            }
            let newest = op(j - 1);
            let bytes = op_disk_bytes(key.len(), newest.value_len as usize);
            if newest.is_delete {
                dead.entry(newest.segment).or_default().bytes += bytes;
            } else {
                live_bytes += bytes;
                index.push(
                    key,
                    Location {
                        segment: newest.segment,
                        value_offset: newest.value_offset,
                        value_len: newest.value_len,
                        lsn: newest.lsn,
                    },
                );
            }
            i = j;
        }
        let index = index.finish();
        drop((order, scratch));
        Resolved {
            index,
            live_bytes,
            dead,
        }
    }
}

/// How many operations ahead of the one being resolved its key is loaded (and twice as far
/// ahead, the operation itself).
const PREFETCH_AHEAD: usize = 8;

/// Below this many operations, resolving on one thread is quick enough.
const PARALLEL_RESOLVE_OPS: usize = 50_000;

/// The index of a range of keys, with its byte accounting.
struct Resolved {
    index: KeyMap,
    live_bytes: u64,
    dead: BTreeMap<SegmentId, DeadOps>,
}

impl Resolved {
    /// Joins this with the resolution of the keys that all follow this one's.
    fn append(mut self, right: Resolved) -> Resolved {
        self.index.append(right.index);
        self.live_bytes += right.live_bytes;
        for (segment, ops) in right.dead {
            self.dead.entry(segment).or_default().merge(ops);
        }
        self
    }
}

/// The median of a sample of the operations' key prefixes; `None` when it would leave one side
/// empty (all sampled prefixes equal), which the caller takes as a reason not to split.
fn median_prefix(ops: &[GatheredOp]) -> Option<u64> {
    let step = (ops.len() / 1024).max(1);
    let mut sample: Vec<u64> = ops.iter().step_by(step).map(|op| op.prefix).collect();
    sample.sort_unstable();
    let median = *sample.get(sample.len() / 2)?;
    (sample.first() != Some(&median)).then_some(median)
}

/// Stable LSD radix sort on the first field, one byte per pass; passes in which every element
/// has the same byte are skipped.
fn radix_sort_by_prefix(
    mut items: Vec<(u64, Lsn, u32)>,
    scratch: &mut Vec<(u64, Lsn, u32)>,
) -> Vec<(u64, Lsn, u32)> {
    scratch.clear();
    scratch.resize(items.len(), (0, 0, 0));
    for pass in 0..8 {
        let shift = pass * 8;
        let mut counts = [0usize; 256];
        for item in &items {
            counts[((item.0 >> shift) & 0xff) as usize] += 1;
        }
        if counts.contains(&items.len()) {
            continue;
        }
        let mut next = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = next;
            next += n;
        }
        for item in &items {
            let bucket = ((item.0 >> shift) & 0xff) as usize;
            scratch[counts[bucket]] = *item;
            counts[bucket] += 1;
        }
        std::mem::swap(&mut items, scratch);
    }
    items
}

pub(crate) fn recover(
    dir: &Path,
    opts: &Options,
    tail_chunks: &Arc<TailChunks>,
) -> Result<Recovered> {
    crate::wal::swap::recover(dir, &*opts.vfs)?;
    let mut ids = Vec::new();
    let mut hints = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            // A segment, hint or marker never committed into place: unused.
            fs::remove_file(entry.path())
                .ctx(|| format!("removing leftover {}", entry.path().display()))?;
        } else if let Some(id) = parse_segment_name(&name) {
            ids.push(id);
        } else if let Some(id) = parse_hint_name(&name) {
            hints.push(id);
        }
    }
    ids.sort_unstable();
    for id in hints {
        if ids.binary_search(&id).is_err() {
            // The hint of a pending segment that was never installed: it must not be taken
            // for the hint of a future segment with the same id.
            let path = crate::wal::segment::hint_path(dir, id);
            fs::remove_file(&path).ctx(|| format!("removing orphan {}", path.display()))?;
        }
    }

    let mut headers: BTreeMap<SegmentId, (SegmentHeader, Arc<dyn FileIo>, u64)> = BTreeMap::new();
    // Newest first: a segment whose creation was cut short can hold no record, and may be
    // dropped if no log segment was started after it (only compacted ones, which a compaction
    // running beside the failed roll can install with higher ids).
    let mut only_compacted_after = true;
    for id in ids.iter().rev() {
        let path = segment_path(dir, *id);
        let file = opts
            .vfs
            .open(&path, false)
            .ctx(|| format!("opening {}", path.display()))?;
        let len = file
            .size()
            .ctx(|| format!("reading size of {}", path.display()))?;
        let mut buf = vec![0u8; SEGMENT_HEADER_BYTES.min(len) as usize];
        file.read_exact_at(&mut buf, 0)
            .ctx(|| format!("reading header of {}", path.display()))?;
        match SegmentHeader::decode(&buf) {
            Ok(h) if h.id == *id => {
                only_compacted_after &= h.compacted;
                headers.insert(*id, (h, file, len));
            }
            Ok(_) | Err(_) if only_compacted_after && len <= SEGMENT_HEADER_BYTES => {
                // Created but never completed (a crash, or a failed write that poisoned the
                // store): it cannot hold a record.
                tracing::warn!(path = %path.display(), "removing a segment whose creation was cut short");
                drop(file);
                fs::remove_file(&path).ctx(|| format!("removing {}", path.display()))?;
            }
            Ok(_) | Err(_) if opts.recovery_mode == RecoveryMode::Salvage => {
                only_compacted_after = false;
                tracing::error!(path = %path.display(), "salvage: skipping a segment with a bad header");
            }
            Ok(h) => {
                return Err(Error::Corrupt {
                    path,
                    offset: 16,
                    reason: format!("header names segment {}", h.id),
                })
            }
            Err(reason) => {
                return Err(Error::Corrupt {
                    path,
                    offset: 0,
                    reason,
                })
            }
        }
    }

    let active_id = headers
        .iter()
        .filter(|(_, (h, _, _))| !h.compacted)
        .map(|(id, _)| *id)
        .next_back();
    // Hints are read first so that the gathered operations can be allocated once: growing
    // them by doubling copied every entry several times and touched twice the memory.
    let mut hints = BTreeMap::new();
    for id in headers.keys() {
        if Some(*id) != active_id {
            hints.insert(*id, hint::read_bytes(dir, *id)?);
        }
    }
    // Segments without a hint are scanned; their operation count is guessed from their size.
    let scanned_bytes: u64 = headers
        .iter()
        .filter(|(id, _)| !matches!(hints.get(*id), Some(Some(_))))
        .map(|(_, (_, _, len))| *len)
        .sum();
    let mut gathered = Gathered::with_capacity(
        hints
            .values()
            .flatten()
            .map(|bytes| hint::entry_count_estimate(bytes))
            .sum::<usize>()
            .saturating_add(usize::try_from(scanned_bytes / GUESSED_OP_BYTES).unwrap_or(0)),
    );
    let mut state = State::default();
    let mut last_lsn: Lsn = 0;
    let mut segments_without_hint = Vec::new();
    let mut active_len = SEGMENT_HEADER_BYTES;
    let salvage = opts.recovery_mode == RecoveryMode::Salvage;
    let header_of: BTreeMap<SegmentId, SegmentHeader> =
        headers.iter().map(|(id, (h, _, _))| (*id, *h)).collect();
    for (id, (header, file, file_len)) in headers {
        let path = segment_path(dir, id);
        let is_active = Some(id) == active_id;
        let mut segment = Segment::new(
            file.clone(),
            0,
            header.lsn_mark,
            header.compacted,
            header.salt,
        );
        let hint_bytes = hints.remove(&id).flatten();
        let mark = gathered.mark();
        let from_hint = hint_bytes.and_then(|bytes| {
            let visited = hint::visit(id, &bytes, |e| {
                segment.note_lsn(e.lsn);
                gathered.push(id, e);
            });
            match visited {
                Ok(segment_len) => Some(segment_len),
                Err(reason) => {
                    hint::warn_damaged(dir, id, &reason);
                    gathered.truncate(mark);
                    segment.min_lsn = Lsn::MAX;
                    segment.max_lsn = 0;
                    None
                }
            }
        });
        // A hint describes the whole sealed segment: a file of another length lost records
        // (or gained bytes) since, which a scan would not notice at a record boundary.
        let from_hint = match from_hint {
            Some(hint_len) if !is_active && hint_len != file_len => {
                let reason = format!(
                    "the segment is {file_len} bytes long but its hint describes {hint_len}"
                );
                if !salvage {
                    return Err(Error::Corrupt {
                        path,
                        offset: hint_len.min(file_len),
                        reason,
                    });
                }
                tracing::error!(path = %path.display(), %reason, "salvage: scanning the segment instead");
                // Gone for good, so that later opens scan the segment too.
                let stale = hint_path(dir, id);
                match fs::remove_file(&stale) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(format!("removing {}", stale.display()), e));
                    }
                    _ => {}
                }
                gathered.truncate(mark);
                segment.min_lsn = Lsn::MAX;
                segment.max_lsn = 0;
                None
            }
            other => other,
        };
        let has_hint = from_hint.is_some();
        let segment_len = match from_hint {
            Some(len) => len,
            None => {
                let Scan {
                    len: scanned_len,
                    records,
                    last_lsn: last_record_lsn,
                    damage,
                } = visit_segment_counting(&file, header.salt, file_len, |e| {
                    segment.note_lsn(e.lsn);
                    gathered.push(id, e);
                })
                .ctx(|| format!("scanning {}", path.display()))?;
                if let Some(lsn) = last_record_lsn {
                    segment.note_lsn(lsn);
                }
                if let Some(Damage {
                    offset,
                    reason,
                    torn,
                }) = damage
                {
                    // Only a tail may be cut: a torn write, which never reached the disk
                    // whole. Damage to bytes a later record says were synced is damage to
                    // acknowledged data (bit rot, a lost sector), not a torn write; so is
                    // any damage in a sealed segment, synced whole when it was sealed. A
                    // hole in an unsynced write ahead of later pages that did reach the
                    // disk is torn: the records after it go too, as they follow the hole.
                    let last_valid = last_record_lsn.unwrap_or(header.lsn_mark);
                    let in_the_middle = !is_active
                        || synced_record_after(&file, header.salt, offset, file_len, last_valid)
                            .ctx(|| format!("scanning {} past damage", path.display()))?;
                    if in_the_middle && opts.recovery_mode == RecoveryMode::TruncateTail {
                        return Err(Error::Corrupt {
                            path,
                            offset,
                            reason,
                        });
                    }
                    tracing::warn!(
                        path = %path.display(), offset, %reason, torn,
                        dropped_bytes = file_len - offset,
                        "truncating a damaged tail of the log at the last valid record"
                    );
                    file.set_len(offset)
                        .ctx(|| format!("truncating {}", path.display()))?;
                    file.sync_data()
                        .ctx(|| format!("syncing {}", path.display()))?;
                }
                if let EndCheck::Records(written) = header.end_check {
                    if records != u64::from(written) {
                        let reason = format!(
                            "the compacted segment holds {records} records where {written} \
                             were written"
                        );
                        if !salvage {
                            return Err(Error::Corrupt {
                                path,
                                offset: scanned_len,
                                reason,
                            });
                        }
                        tracing::error!(path = %path.display(), %reason, "salvage: keeping what is left");
                        let kept = u32::try_from(records).unwrap_or(u32::MAX);
                        let accepted = SegmentHeader {
                            end_check: EndCheck::Records(kept),
                            ..header
                        };
                        rewrite_header(&*opts.vfs, &path, &accepted)
                            .ctx(|| format!("rewriting the header of {}", path.display()))?;
                    }
                }
                if !is_active && !header.compacted {
                    segments_without_hint.push(id);
                }
                scanned_len
            }
        };
        segment.len = segment_len;
        segment.has_hint = has_hint;
        segment.sealed = !is_active;
        if segment.sealed {
            crate::io::seal_for_reads(&*segment.file);
        }
        last_lsn = last_lsn.max(header.lsn_mark);
        if !segment.is_empty() {
            last_lsn = last_lsn.max(segment.max_lsn);
        }
        if is_active {
            active_len = segment_len;
        }
        state.segments.insert(id, segment);
    }
    check_log_continuity(dir, &*opts.vfs, &header_of, &mut state, salvage)?;
    let (index, live_bytes, dead) = gathered.resolve();
    state.index = index;
    state.live_bytes = live_bytes;
    for (id, dead) in dead {
        if let Some(seg) = state.segments.get_mut(&id) {
            seg.absorb(dead);
        }
    }
    // Past every segment file found, including one salvage skipped: opening does not
    // truncate, so reusing its id would write the new active segment over its bytes.
    let mut next_segment_id = state
        .segments
        .keys()
        .next_back()
        .copied()
        .max(ids.last().copied())
        .map_or(1, |id| id + 1);

    let active = match active_id {
        Some(id) => match state.segments.get_mut(&id) {
            Some(seg) => {
                if active_len > SEGMENT_HEADER_BYTES {
                    // What a crashed process wrote may still be only in the page cache; the
                    // records written from now on say the log was synced through `last_lsn`
                    // (and `flush` finds nothing new to sync), so it must be.
                    seg.file
                        .sync_data()
                        .ctx(|| format!("syncing segment {id}"))?;
                }
                seg.file = CachedTail::wrap(seg.file.clone(), active_len, tail_chunks);
                ActiveSegment {
                    id,
                    file: seg.file.clone(),
                    len: active_len,
                    allocated: seg
                        .file
                        .size()
                        .ctx(|| format!("reading size of segment {id}"))?,
                    unsynced: false,
                    written_lsn: last_lsn,
                    hint: if active_len > SEGMENT_HEADER_BYTES {
                        HintBuilder::unknown()
                    } else {
                        HintBuilder::new(id)
                    },
                    salt: seg.salt,
                }
            }
            None => return Err(crate::store::missing_segment(dir, id)),
        },
        None => {
            let id = next_segment_id;
            next_segment_id += 1;
            let header = SegmentHeader {
                id,
                compacted: false,
                lsn_mark: last_lsn,
                // No log segment is left to follow.
                end_check: EndCheck::None,
                salt: crate::wal::segment::new_salt(),
            };
            let path = segment_path(dir, id);
            let file = opts
                .vfs
                .open(&path, true)
                .ctx(|| format!("creating {}", path.display()))?;
            file.write_all_at(&header.encode(), 0)
                .ctx(|| format!("writing header of {}", path.display()))?;
            file.sync_data()
                .ctx(|| format!("syncing {}", path.display()))?;
            opts.vfs
                .sync_dir(dir)
                .ctx(|| format!("syncing directory {}", dir.display()))?;
            let file = CachedTail::wrap(file, SEGMENT_HEADER_BYTES, tail_chunks);
            state
                .segments
                .insert(id, Segment::fresh_log(file.clone(), &header));
            ActiveSegment::fresh(file, &header)
        }
    };
    tracing::debug!(dir = %dir.display(), keys = state.index.len(), last_lsn, "recovered");
    Ok(Recovered {
        state,
        active,
        last_lsn,
        next_segment_id,
        segments_without_hint,
    })
}
