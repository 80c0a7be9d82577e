//! Writing compacted segments: pending (`.seg.tmp`) segment files that hold a chosen subset of
//! records under their original LSNs, with hint files, ready for a [`swap`](super::swap).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::batch::Op;
use crate::error::{IoContext, Result};
use crate::index::Segment;
use crate::io::FileIo;
use crate::store::Inner;
use crate::wal::hint::{self, Hint, HintEntry};
use crate::wal::record::{op_disk_bytes, EncodedRecord};
use crate::wal::segment::{SegmentHeader, SegmentId, SEGMENT_HEADER_BYTES};
use crate::wal::swap::pending_path;
use crate::Lsn;

/// One compacted segment being written.
pub(crate) struct Pending {
    pub id: SegmentId,
    file: Arc<dyn FileIo>,
    entries: Vec<HintEntry>,
    pub segment: Segment,
}

/// Appends single-operation records to a series of pending compacted segments.
pub(crate) struct CompactedWriter {
    inner: Arc<Inner>,
    /// Goes into every header: the highest LSN the new segments stand for.
    lsn_mark: Lsn,
    pub outputs: Vec<Pending>,
}

/// Where an appended value landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub segment: SegmentId,
    pub value_offset: u32,
}

impl CompactedWriter {
    pub fn new(inner: &Arc<Inner>, lsn_mark: Lsn) -> Self {
        CompactedWriter {
            inner: inner.clone(),
            lsn_mark,
            outputs: Vec::new(),
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
        let header = SegmentHeader {
            id,
            compacted: true,
            lsn_mark: self.lsn_mark,
        };
        file.write_all_at(&header.encode(), 0)
            .ctx(|| format!("writing {}", path.display()))?;
        self.outputs.push(Pending {
            id,
            segment: Segment::new(file.clone(), SEGMENT_HEADER_BYTES, self.lsn_mark, true),
            file,
            entries: Vec::new(),
        });
        Ok(())
    }

    /// Appends `op` as a record with `lsn`; tombstones count as dead bytes right away.
    pub fn append(&mut self, op: &Op, lsn: Lsn) -> Result<Placed> {
        let mut record = EncodedRecord::encode(std::slice::from_ref(op));
        record.stamp(lsn);
        let len = record.bytes.len() as u64;
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
        let offset = out.segment.len;
        out.file
            .write_all_at(&record.bytes, offset)
            .ctx(|| format!("writing compacted segment {}", out.id))?;
        out.segment.len += len;
        out.segment.note_lsn(lsn);
        let span = record.spans[0];
        let value_offset = (offset + u64::from(span.value_start)) as u32;
        if span.is_delete {
            out.segment.dead_bytes += op_disk_bytes(span.key_len as usize, 0);
        }
        out.entries.push(HintEntry {
            key: op.key().to_vec(),
            lsn,
            value_offset,
            value_len: span.value_len,
            is_delete: span.is_delete,
        });
        Ok(Placed {
            segment: out.id,
            value_offset,
        })
    }

    /// Syncs every output and writes its hint; returns them, still pending (the caller
    /// swaps them in or [`abandon`](Self::abandon)s them).
    /// At least one segment is produced, so that its header keeps `lsn_mark` on disk.
    pub fn finish(mut self) -> Result<Vec<Pending>> {
        if self.outputs.is_empty() {
            self.start_segment()?;
        }
        for out in &mut self.outputs {
            out.file
                .sync_data()
                .ctx(|| format!("syncing compacted segment {}", out.id))?;
            let content = Hint {
                segment_len: out.segment.len,
                entries: std::mem::take(&mut out.entries),
            };
            hint::write(&self.inner.dir, out.id, &content)?;
            out.segment.has_hint = true;
        }
        Ok(std::mem::take(&mut self.outputs))
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
