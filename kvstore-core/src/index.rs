//! The in-memory state: an ordered index from key to the location of its newest value, and
//! the table of segment files with their dead-byte accounting.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::io::FileIo;
use crate::keymap::KeyMap;
use crate::wal::record::{op_disk_bytes, op_header_len, verify_op};
use crate::wal::segment::SegmentId;
use crate::Lsn;

/// Where the newest value of a key lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: SegmentId,
    /// File offset of the value's first byte.
    pub value_offset: u32,
    pub value_len: u32,
    pub lsn: Lsn,
}

impl Location {
    /// Reads the value of `key` from `file` (its segment), verifying the op's checksum and key
    /// so that damaged bytes on disk are never returned as data.
    pub fn read_value(
        &self,
        file: &dyn FileIo,
        key: &[u8],
        dir: &std::path::Path,
    ) -> crate::Result<Vec<u8>> {
        let mut buf = Vec::new();
        Ok(self.value_in(file, key, dir, &mut buf)?.to_vec())
    }

    /// Starts loading this value's op (header, key and value) into the CPU cache where its
    /// segment `file` holds it in memory (mapped, or the active segment's mirror), so that a
    /// read of it moments later does not wait for memory.
    pub fn prefetch(&self, file: &dyn FileIo, key_len: usize) {
        let value = u64::from(self.value_offset);
        let header_and_key = (op_header_len(key_len, self.value_len as usize) + key_len) as u64;
        let op_start = value.saturating_sub(header_and_key);
        // The op's first and last lines (an op of 16-byte keys and 100-byte values spans two
        // or three 64-byte lines).
        file.prefetch(
            op_start,
            (value - op_start) as usize + self.value_len as usize,
        );
    }

    /// Like [`read_value`](Self::read_value), but borrows: from the mapped file when the
    /// segment is sealed, else from `buf`, which is reused.
    pub fn value_in<'a>(
        &self,
        file: &'a dyn FileIo,
        key: &[u8],
        dir: &std::path::Path,
        buf: &'a mut Vec<u8>,
    ) -> crate::Result<&'a [u8]> {
        let (op, value_at) = self.verified_op(file, key, dir, buf)?;
        Ok(&op[value_at..])
    }

    /// The op holding this value (from the mapped file, or read into `buf`) and where in it the
    /// value starts, once its checksum and key are verified.
    fn verified_op<'a>(
        &self,
        file: &'a dyn FileIo,
        key: &[u8],
        dir: &std::path::Path,
        buf: &'a mut Vec<u8>,
    ) -> crate::Result<(&'a [u8], usize)> {
        let header_and_key = (op_header_len(key.len(), self.value_len as usize) + key.len()) as u64;
        let corrupt = |reason: &str| crate::Error::Corrupt {
            path: crate::wal::segment::segment_path(dir, self.segment),
            offset: u64::from(self.value_offset).saturating_sub(header_and_key),
            reason: reason.to_string(),
        };
        let start = u64::from(self.value_offset)
            .checked_sub(header_and_key)
            .ok_or_else(|| corrupt("value location precedes its op header"))?;
        let len = header_and_key as usize + self.value_len as usize;
        let op: &[u8] = match file.mapped() {
            Some(bytes) => usize::try_from(start)
                .ok()
                .and_then(|s| bytes.get(s..s.checked_add(len)?))
                .ok_or_else(|| corrupt("value location is past the end of its segment"))?,
            None => {
                buf.clear();
                buf.resize(len, 0);
                file.read_exact_at(buf, start).map_err(|e| {
                    crate::Error::io(format!("reading a value from segment {}", self.segment), e)
                })?;
                buf
            }
        };
        let at = verify_op(op, key).ok_or_else(|| corrupt("value fails its checksum"))?;
        Ok((op, at))
    }

    /// The whole op (header, key and value) holding this value, checksum verified, borrowed
    /// like [`value_in`](Self::value_in)'s value.
    pub fn op_in<'a>(
        &self,
        file: &'a dyn FileIo,
        key: &[u8],
        dir: &std::path::Path,
        buf: &'a mut Vec<u8>,
    ) -> crate::Result<&'a [u8]> {
        Ok(self.verified_op(file, key, dir, buf)?.0)
    }
}

/// A segment file and what the engine knows about its contents.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub file: Arc<dyn FileIo>,
    /// Bytes of valid data (header and whole records).
    pub len: u64,
    /// Bytes of operations that no longer decide any key's value.
    pub dead_bytes: u64,
    /// Value offsets of this segment's puts that no longer decide their key (overwritten or
    /// deleted since), so that compaction tells live records from dead ones without looking
    /// every key up in the index (which held the index's lock against writers for the whole
    /// copy, and cut a concurrent writer to a fifth of its rate).
    ///
    /// It must be exact. An offset goes in only once the index stops pointing at it, and
    /// offsets are never reused in a segment, so one here is dead for good (a live one here
    /// would be dropped). And every put the index stopped pointing at must be here: compaction
    /// copies the others with its own, higher LSN, so a dead put missed here would, after a
    /// restart, shadow the live value of its key in a segment left out of the compaction.
    /// Every path that moves the index off a put goes through [`State::mark_dead_put`] (or
    /// fills this as recovery and snapshot install do); debug builds check both directions
    /// in every compaction. Costs 4 bytes per dead put until the segment is compacted away.
    pub dead_offsets: Vec<u32>,
    /// Lowest and highest LSN of a record inside; `min_lsn > max_lsn` when empty.
    pub min_lsn: Lsn,
    pub max_lsn: Lsn,
    /// See [`crate::wal::segment::SegmentHeader::lsn_mark`].
    pub lsn_mark: Lsn,
    /// The salt of its records' header checksums (see [`crate::wal::segment::SegmentHeader`]).
    pub salt: u32,
    /// A compaction output (holds a subset of old records, not a stretch of the log).
    pub compacted: bool,
    /// Whether a valid hint file exists for it.
    pub has_hint: bool,
    /// Its hint file's bytes, built while it was written, until the background thread
    /// writes them.
    pub built_hint: Option<Vec<u8>>,
    /// No longer appended to, and every record in it published to the index: only such
    /// segments may be compacted (before publication, the index does not yet point at the
    /// newest records, and compaction would take them for dead).
    pub sealed: bool,
}

impl Segment {
    pub fn new(file: Arc<dyn FileIo>, len: u64, lsn_mark: Lsn, compacted: bool, salt: u32) -> Self {
        Segment {
            file,
            salt,
            len,
            dead_bytes: 0,
            dead_offsets: Vec::new(),
            min_lsn: Lsn::MAX,
            max_lsn: 0,
            lsn_mark,
            compacted,
            has_hint: false,
            built_hint: None,
            sealed: compacted,
        }
    }

    /// A log segment just created with `header`, holding no record yet.
    pub fn fresh_log(file: Arc<dyn FileIo>, header: &crate::wal::segment::SegmentHeader) -> Self {
        Segment::new(
            file,
            crate::wal::segment::SEGMENT_HEADER_BYTES,
            header.lsn_mark,
            false,
            header.salt,
        )
    }

    pub fn note_lsn(&mut self, lsn: Lsn) {
        self.min_lsn = self.min_lsn.min(lsn);
        self.max_lsn = self.max_lsn.max(lsn);
    }

    pub fn is_empty(&self) -> bool {
        self.min_lsn > self.max_lsn
    }

    /// Counts `dead` against this segment (found dead by recovery or a snapshot install).
    pub fn absorb(&mut self, dead: DeadOps) {
        self.dead_bytes += dead.bytes;
        self.dead_offsets.extend(dead.put_offsets);
    }
}

/// Operations of one segment found dead together, before they are counted against it
/// ([`Segment::absorb`]).
#[derive(Debug, Default)]
pub(crate) struct DeadOps {
    pub bytes: u64,
    /// Value offsets of the puts among them (see [`Segment::dead_offsets`]).
    pub put_offsets: Vec<u32>,
}

impl DeadOps {
    /// A put of `bytes` on disk whose value starts at `value_offset`.
    pub fn put(&mut self, value_offset: u32, bytes: u64) {
        self.bytes += bytes;
        self.put_offsets.push(value_offset);
    }

    /// Adds `other`, of the same segment.
    pub fn merge(&mut self, other: DeadOps) {
        self.bytes += other.bytes;
        self.put_offsets.extend(other.put_offsets);
    }
}

/// Index plus segment table, guarded together by one `RwLock` so that a location and the
/// file it points into are always read consistently.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub index: KeyMap,
    pub segments: BTreeMap<SegmentId, Segment>,
    /// Bytes of operations that currently decide a key's value.
    pub live_bytes: u64,
    /// The LSN of the newest delete this handle applied (0: none since it opened), so that
    /// a key without a value can be told apart from one created and deleted in between
    /// (see [`crate::KeyVersion`]).
    pub last_delete_lsn: u64,
    /// Snapshot installs this handle made: each replaced every value at once.
    pub installs: u64,
}

impl State {
    fn mark_dead(&mut self, segment: SegmentId, bytes: u64) {
        if let Some(seg) = self.segments.get_mut(&segment) {
            seg.dead_bytes += bytes;
        }
    }

    /// Records a committed put: the previous value of the key becomes dead.
    pub fn apply_put(&mut self, key: &[u8], loc: Location) {
        let bytes = op_disk_bytes(key.len(), loc.value_len as usize);
        self.live_bytes += bytes;
        if let Some(old) = self.index.insert(key, loc) {
            self.retire(key.len(), old);
        }
    }

    /// Records a committed delete: the previous value and the tombstone itself are dead.
    pub fn apply_delete(&mut self, key: &[u8], segment: SegmentId) {
        self.mark_dead(segment, op_disk_bytes(key.len(), 0));
        if let Some(old) = self.index.remove(key) {
            self.retire(key.len(), old);
        }
    }

    fn retire(&mut self, key_len: usize, old: Location) {
        let bytes = op_disk_bytes(key_len, old.value_len as usize);
        self.live_bytes = self.live_bytes.saturating_sub(bytes);
        self.mark_dead_put(old.segment, old.value_offset, bytes);
    }

    /// Counts the put whose value starts at `value_offset` in `segment` as dead.
    pub fn mark_dead_put(&mut self, segment: SegmentId, value_offset: u32, bytes: u64) {
        if let Some(seg) = self.segments.get_mut(&segment) {
            seg.dead_bytes += bytes;
            seg.dead_offsets.push(value_offset);
        }
    }

    /// Dead bytes and total bytes of the sealed segments a compaction may take with WAL
    /// consumers needing the log from `floor` on: compaction outputs, and log segments whose
    /// records are all at or below `floor` (as `compact_all` chooses them).
    pub fn compactable_dead_and_total(&self, floor: Lsn) -> (u64, u64) {
        self.segments
            .values()
            .filter(|s| s.sealed && (s.compacted || s.max_lsn <= floor))
            .fold((0, 0), |(d, t), s| (d + s.dead_bytes, t + s.len))
    }

    /// The log segments (not compaction outputs), in LSN order.
    pub fn log_segments(&self) -> impl Iterator<Item = (&SegmentId, &Segment)> {
        self.segments.iter().filter(|(_, s)| !s.compacted)
    }
}
