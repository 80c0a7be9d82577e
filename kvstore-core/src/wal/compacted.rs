//! Writing compacted segments: pending (`.seg.tmp`) segment files that hold a chosen subset of
//! records under their original LSNs, with hint files, ready for a [`swap`](super::swap).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::batch::Op;
use crate::error::{IoContext, Result};
use crate::index::{Location, Segment};
use crate::io::FileIo;
use crate::store::Inner;
use crate::wal::hint::{self, Hint, HintEntry};
use crate::wal::record::{
    append_encoded_op, append_op, op_disk_bytes, seal_record, OpSpan, RECORD_HEADER_BYTES,
};
use crate::wal::segment::{EndCheck, SegmentHeader, SegmentId, SEGMENT_HEADER_BYTES};
use crate::wal::swap::pending_path;
use crate::Lsn;

/// One compacted segment being written.
pub(crate) struct Pending {
    pub id: SegmentId,
    file: Arc<dyn FileIo>,
    /// What its hint would hold: each op's key (a range of `keys`) and value location.
    entries: Vec<(std::ops::Range<usize>, u32, u32, bool)>,
    keys: Vec<u8>,
    /// Records written to it, which its header states once it is finished.
    records: u32,
    pub segment: Segment,
}

impl Pending {
    /// The hint of this segment, if one is worth writing ([`hint::worth_writing`]); the
    /// entries are only built when even their least size would be worth it.
    fn hint(&self, lsn: Lsn) -> Option<Hint> {
        let least_bytes = hint::EMPTY_HINT_BYTES as u64
            + self.entries.len() as u64 * hint::least_entry_bytes(0)
            + self.keys.len() as u64;
        if !hint::worth_writing(least_bytes, self.segment.len) {
            return None;
        }
        let content = Hint {
            segment_len: self.segment.len,
            entries: self
                .entries
                .iter()
                .map(|(key, value_offset, value_len, is_delete)| HintEntry {
                    key: self.keys[key.clone()].to_vec(),
                    lsn,
                    value_offset: *value_offset,
                    value_len: *value_len,
                    is_delete: *is_delete,
                })
                .collect(),
        };
        hint::worth_writing(hint::encoded_len(&content), content.segment_len).then_some(content)
    }
}

/// Appends operations to a series of pending compacted segments, packed many to a record.
///
/// Every record carries `lsn_mark` as its LSN rather than its operations' own. That is safe:
/// every LSN in a compaction's input is at most its horizon (`lsn_mark`), every write the
/// compaction did not see has a higher LSN, and a key is in at most one compacted segment, so
/// recovery resolves every key as before. (A snapshot install's `lsn_mark` is the snapshot's
/// LSN, with the same argument.)
pub(crate) struct CompactedWriter {
    inner: Arc<Inner>,
    lsn_mark: Lsn,
    pub outputs: Vec<Pending>,
    /// The record being assembled: its header (filled in when written), then its ops.
    record: Vec<u8>,
    /// Per op of that record: where it sits in `record` and the location it replaces.
    record_ops: Vec<(OpSpan, Option<Location>)>,
    placements: Vec<Placement>,
}

/// Where a copied value landed, and where it came from.
#[derive(Debug)]
pub(crate) struct Placement {
    pub key: Box<[u8]>,
    pub old: Option<Location>,
    pub new: Location,
}

/// Operations are packed into records of about this size: large enough that the record
/// header costs nothing, small enough to read and verify in one go.
const RECORD_TARGET_BYTES: usize = 64 << 10;

impl CompactedWriter {
    pub fn new(inner: &Arc<Inner>, lsn_mark: Lsn) -> Self {
        CompactedWriter {
            inner: inner.clone(),
            lsn_mark,
            outputs: Vec::new(),
            record: vec![0; RECORD_HEADER_BYTES],
            record_ops: Vec::new(),
            placements: Vec::new(),
        }
    }

    fn start_segment(&mut self) -> Result<()> {
        let id = self.inner.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let path = pending_path(&self.inner.dir, id);
        let file = self
            .inner
            .opts
            .vfs
            .open(&path, true)
            .ctx(|| format!("creating {}", path.display()))?;
        // The record count goes into the header once the segment is finished.
        let header = SegmentHeader {
            id,
            compacted: true,
            lsn_mark: self.lsn_mark,
            end_check: EndCheck::None,
            salt: crate::wal::segment::new_salt(),
        };
        file.write_all_at(&header.encode(), 0)
            .ctx(|| format!("writing {}", path.display()))?;
        self.outputs.push(Pending {
            id,
            segment: Segment::new(
                file.clone(),
                SEGMENT_HEADER_BYTES,
                self.lsn_mark,
                true,
                header.salt,
            ),
            file,
            entries: Vec::new(),
            keys: Vec::new(),
            records: 0,
        });
        Ok(())
    }

    /// Adds `op`, which replaces the value at `old` (if any); tombstones count as dead bytes
    /// right away. Placements are known once the writer is finished.
    pub fn append(&mut self, op: Op, old: Option<Location>) -> Result<()> {
        let value = match &op {
            Op::Put { value, .. } => Some(value.as_slice()),
            Op::Delete { .. } => None,
        };
        let span = append_op(&mut self.record, op.key(), value);
        self.appended(span, old)
    }

    /// Adds a tombstone for `key`.
    pub fn append_delete(&mut self, key: &[u8]) -> Result<()> {
        let span = append_op(&mut self.record, key, None);
        self.appended(span, None)
    }

    /// Adds an operation as it was read from a segment (`op`: one whole encoded op, its
    /// checksum verified by the caller against the key `key_len` long), copying its bytes as
    /// they are: no decoding, no new checksum.
    pub fn append_encoded(&mut self, op: &[u8], key_len: usize, old: Location) -> Result<()> {
        let span = append_encoded_op(&mut self.record, op, key_len).ok_or_else(|| {
            crate::Error::InvalidOptions("internal: a verified op did not parse".into())
        })?;
        self.appended(span, Some(old))
    }

    fn appended(&mut self, span: OpSpan, old: Option<Location>) -> Result<()> {
        self.record_ops.push((span, old));
        if self.record.len() - RECORD_HEADER_BYTES >= RECORD_TARGET_BYTES {
            self.write_record()?;
        }
        Ok(())
    }

    fn write_record(&mut self) -> Result<()> {
        if self.record_ops.is_empty() {
            return Ok(());
        }
        let len = self.record.len() as u64;
        let full = self.outputs.last().is_none_or(|o| {
            o.segment.len > SEGMENT_HEADER_BYTES
                && o.segment.len + len > self.inner.opts.segment_bytes
        });
        if full {
            self.start_segment()?;
        }
        let Some(out) = self.outputs.last_mut() else {
            return Err(crate::Error::InvalidOptions(
                "internal: no compacted segment to append to".into(),
            ));
        };
        // Sealed once its segment is known: the header checksum covers the segment's salt.
        seal_record(
            &mut self.record,
            self.record_ops.len(),
            self.lsn_mark,
            out.segment.salt,
        );
        let offset = out.segment.len;
        out.file
            .write_all_at(&self.record, offset)
            .ctx(|| format!("writing compacted segment {}", out.id))?;
        out.segment.len += len;
        out.records += 1;
        out.segment.note_lsn(self.lsn_mark);
        for (span, old) in self.record_ops.drain(..) {
            let key =
                &self.record[span.key_start as usize..(span.key_start + span.key_len) as usize];
            let value_offset = (offset + u64::from(span.value_start)) as u32;
            out.entries.push((
                out.keys.len()..out.keys.len() + key.len(),
                value_offset,
                span.value_len,
                span.is_delete,
            ));
            out.keys.extend_from_slice(key);
            if span.is_delete {
                out.segment.dead_bytes += op_disk_bytes(span.key_len as usize, 0);
                continue;
            }
            self.placements.push(Placement {
                key: key.into(),
                old,
                new: Location {
                    segment: out.id,
                    value_offset,
                    value_len: span.value_len,
                    lsn: self.lsn_mark,
                },
            });
        }
        self.record.truncate(RECORD_HEADER_BYTES);
        Ok(())
    }

    /// Writes what is buffered, syncs every output and writes the hints worth having;
    /// returns the outputs, still pending (the caller swaps them in or
    /// [`abandon`](Self::abandon)s them), and where each put landed, in order.
    /// At least one segment is produced, so that its header keeps `lsn_mark` on disk.
    pub fn finish(mut self) -> Result<(Vec<Pending>, Vec<Placement>)> {
        self.write_record()?;
        if self.outputs.is_empty() {
            self.start_segment()?;
        }
        for out in &mut self.outputs {
            let header = SegmentHeader {
                id: out.id,
                compacted: true,
                lsn_mark: self.lsn_mark,
                end_check: EndCheck::Records(out.records),
                salt: out.segment.salt,
            };
            out.file
                .write_all_at(&header.encode(), 0)
                .ctx(|| format!("writing the header of compacted segment {}", out.id))?;
            out.file
                .sync_data()
                .ctx(|| format!("syncing compacted segment {}", out.id))?;
            crate::io::seal_for_reads(&*out.file);
            if let Some(content) = out.hint(self.lsn_mark) {
                hint::write(&self.inner.dir, out.id, &content)?;
                out.segment.has_hint = true;
            }
            out.entries = Vec::new();
            out.keys = Vec::new();
        }
        let placements = std::mem::take(&mut self.placements);
        Ok((std::mem::take(&mut self.outputs), placements))
    }

    /// Removes the pending files of an abandoned writer.
    pub fn abandon(outputs: &[Pending], dir: &std::path::Path) {
        for out in outputs {
            for path in [
                pending_path(dir, out.id),
                crate::wal::segment::hint_path(dir, out.id),
            ] {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), error = %e, "could not remove an abandoned file");
                    }
                }
            }
        }
    }
}

impl Drop for CompactedWriter {
    /// A writer dropped before `finish` (an error midway) leaves no files behind.
    fn drop(&mut self) {
        Self::abandon(&self.outputs, &self.inner.dir);
    }
}
