//! Online compaction: live records of sealed segments are copied into new ("compacted")
//! segments while reads and writes go on, then the old segments are removed.
//!
//! Safety rests on three rules:
//! - a copied record keeps its LSN, and recovery lets the highest LSN of a key win, so the old
//!   and new copies may coexist after a crash;
//! - a tombstone is dropped only when no segment left outside the compaction holds an older
//!   record (nothing it hides can come back);
//! - the old segments are deleted only after a durable marker lists them, and recovery
//!   finishes an interrupted deletion, so a crash never deletes a tombstone but keeps what it hid.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::batch::Op;
use crate::error::{Error, IoContext, Result};
use crate::index::{Location, Segment};
use crate::io::FileIo;
use crate::store::Inner;
use crate::wal::hint::{self, Hint, HintEntry};
use crate::wal::record::{op_disk_bytes, EncodedRecord};
use crate::wal::recovery::scan_segment;
use crate::wal::segment::{
    hint_path, segment_path, SegmentHeader, SegmentId, SEGMENT_HEADER_BYTES,
};
use crate::Lsn;

/// Name of the marker listing segments a finished compaction still has to delete.
pub(crate) const MARKER_FILE_NAME: &str = "COMPACTION_DONE";

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
    len: u64,
    has_hint: bool,
}

/// A compacted segment being written.
struct Output {
    id: SegmentId,
    file: Arc<dyn FileIo>,
    len: u64,
    entries: Vec<HintEntry>,
    segment: Segment,
}

/// A live value moved from `old` to `new`.
struct Moved {
    key: Box<[u8]>,
    old: Location,
    new: Location,
}

impl Inner {
    /// Whether the sealed segments' dead bytes passed the automatic threshold.
    pub(crate) fn compaction_due(&self) -> bool {
        let active = self.active_id();
        let (dead, total) = self.state.read().sealed_dead_and_total(active);
        dead >= self.opts.compaction_min_dead_bytes
            && dead as f64 >= self.opts.compaction_dead_ratio * total as f64
    }

    /// The LSN below which no registered WAL consumer needs the log, ignoring consumers that
    /// fell further behind than the retention limit allows.
    fn retention_floor(&self, active: SegmentId) -> Lsn {
        let consumers: Vec<(String, Lsn)> = self
            .wal_consumers
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let state = self.state.read();
        let mut floor = Lsn::MAX;
        for (name, lsn) in consumers {
            let retained = crate::stats::retained_bytes(&state, active, lsn);
            if retained > self.opts.max_retained_wal_bytes {
                tracing::warn!(consumer = %name, lsn, retained, limit = self.opts.max_retained_wal_bytes,
                    "WAL consumer is too far behind; compacting its log (it will need a full resync)");
            } else {
                floor = floor.min(lsn);
            }
        }
        floor
    }

    /// Seals the active segment if it holds dead bytes, so that an explicit compaction can
    /// reclaim them too.
    fn seal_active_if_dead(&self) -> Result<()> {
        let mut active = self.active.lock();
        let dead = self
            .state
            .read()
            .segments
            .get(&active.id)
            .map_or(0, |s| s.dead_bytes);
        if dead > 0 {
            let last = active.written_lsn;
            self.roll(&mut active, last)?;
        }
        Ok(())
    }

    /// Runs one compaction over every sealed segment that has dead bytes and that no WAL
    /// consumer still needs.
    pub(crate) fn compact_all(&self, seal_active: bool) -> Result<CompactionReport> {
        let _exclusive = self.compaction_lock.lock();
        if let Some(reason) = self.poison_reason() {
            return Err(Error::Poisoned { reason });
        }
        if seal_active {
            self.seal_active_if_dead()?;
        }
        let active = self.active_id();
        let floor = self.retention_floor(active);
        let (candidates, outside_min_lsn, horizon) = {
            let state = self.state.read();
            let mut candidates = Vec::new();
            let mut outside_min = Lsn::MAX;
            let mut horizon = 0;
            for (id, s) in &state.segments {
                let wanted = *id != active
                    && (s.dead_bytes > 0 || (s.compacted && s.is_empty()))
                    && (s.compacted || s.max_lsn <= floor);
                if wanted {
                    horizon = horizon
                        .max(s.max_lsn)
                        .max(if s.compacted { s.lsn_mark } else { 0 });
                    candidates.push(Candidate {
                        id: *id,
                        file: s.file.clone(),
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
        let mut report = CompactionReport {
            segments_compacted: candidates.len(),
            bytes_before: candidates.iter().map(|c| c.len).sum(),
            ..Default::default()
        };

        let mut outputs: Vec<Output> = Vec::new();
        let mut moved: Vec<Moved> = Vec::new();
        for candidate in &candidates {
            self.copy_live(
                candidate,
                outside_min_lsn,
                horizon,
                &mut outputs,
                &mut moved,
            )?;
        }
        if outputs.is_empty() {
            // Still write one (empty) output: its header carries the compaction horizon, which
            // tells `wal_since` where the complete log now starts.
            outputs.push(self.new_output(horizon)?);
        }
        for out in &mut outputs {
            self.finish_output(out)?;
        }
        self.sync_dir()?;
        let doomed: Vec<SegmentId> = candidates.iter().map(|c| c.id).collect();
        write_marker(&self.dir, &doomed)?;
        self.sync_dir()?;

        {
            let mut state = self.state.write();
            for out in &outputs {
                state.segments.insert(out.id, out.segment.clone());
            }
            for m in &moved {
                let current = state.index.get(&m.key).copied();
                if current == Some(m.old) {
                    if let Some(slot) = state.index.get_mut(&m.key) {
                        *slot = m.new;
                    }
                } else if let Some(seg) = state.segments.get_mut(&m.new.segment) {
                    // Overwritten while we copied: the copy is dead on arrival.
                    seg.dead_bytes += op_disk_bytes(m.key.len(), m.new.value_len as usize);
                }
            }
            for id in &doomed {
                state.segments.remove(id);
            }
        }
        finish_deletion(&self.dir, &doomed, &*self.opts.vfs)?;
        report.segments_written = outputs.len();
        report.bytes_after = outputs.iter().map(|o| o.len).sum();
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(?report, "compaction finished");
        Ok(report)
    }

    fn new_output(&self, horizon: Lsn) -> Result<Output> {
        let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let path = segment_path(&self.dir, id).with_extension("seg.tmp");
        let file = self
            .opts
            .vfs
            .open(&path, true)
            .ctx(|| format!("creating {}", path.display()))?;
        let header = SegmentHeader {
            id,
            compacted: true,
            lsn_mark: horizon,
        };
        file.write_all_at(&header.encode(), 0)
            .ctx(|| format!("writing {}", path.display()))?;
        Ok(Output {
            id,
            segment: Segment::new(file.clone(), SEGMENT_HEADER_BYTES, horizon, true),
            file,
            len: SEGMENT_HEADER_BYTES,
            entries: Vec::new(),
        })
    }

    /// Copies the live puts and the still-needed tombstones of one candidate into outputs.
    fn copy_live(
        &self,
        candidate: &Candidate,
        outside_min_lsn: Lsn,
        horizon: Lsn,
        outputs: &mut Vec<Output>,
        moved: &mut Vec<Moved>,
    ) -> Result<()> {
        let path = segment_path(&self.dir, candidate.id);
        let entries = match candidate.has_hint {
            true => hint::read(&self.dir, candidate.id)?,
            false => None,
        };
        let entries = match entries {
            Some(h) => h.entries,
            None => {
                let (content, damage) = scan_segment(&candidate.file, candidate.len)
                    .ctx(|| format!("scanning {} for compaction", path.display()))?;
                if let Some((offset, reason, _)) = damage {
                    return Err(Error::Corrupt {
                        path,
                        offset,
                        reason,
                    });
                }
                content.entries
            }
        };
        const CHUNK: usize = 1024;
        for chunk in entries.chunks(CHUNK) {
            let keep: Vec<&HintEntry> = {
                let state = self.state.read();
                chunk
                    .iter()
                    .filter(|e| {
                        let current = state.index.get(e.key.as_slice());
                        if e.is_delete {
                            current.is_none() && outside_min_lsn < e.lsn
                        } else {
                            current.is_some_and(|loc| {
                                loc.segment == candidate.id
                                    && loc.lsn == e.lsn
                                    && loc.value_offset == e.value_offset
                            })
                        }
                    })
                    .collect()
            };
            for e in keep {
                let op = if e.is_delete {
                    Op::Delete { key: e.key.clone() }
                } else {
                    let mut value = vec![0u8; e.value_len as usize];
                    candidate
                        .file
                        .read_exact_at(&mut value, u64::from(e.value_offset))
                        .ctx(|| format!("reading {} for compaction", path.display()))?;
                    Op::Put {
                        key: e.key.clone(),
                        value,
                    }
                };
                let mut record = EncodedRecord::encode(std::slice::from_ref(&op));
                record.stamp(e.lsn);
                let needs_new = outputs.last().is_none_or(|o| {
                    o.len > SEGMENT_HEADER_BYTES
                        && o.len + record.bytes.len() as u64 > self.opts.segment_bytes
                });
                if needs_new {
                    outputs.push(self.new_output(horizon)?);
                }
                let Some(out) = outputs.last_mut() else {
                    continue;
                };
                let offset = out.len;
                out.file
                    .write_all_at(&record.bytes, offset)
                    .ctx(|| format!("writing compacted segment {}", out.id))?;
                out.len += record.bytes.len() as u64;
                out.segment.len = out.len;
                out.segment.note_lsn(e.lsn);
                let span = record.spans[0];
                let value_offset = (offset + u64::from(span.value_start)) as u32;
                if e.is_delete {
                    out.segment.dead_bytes += op_disk_bytes(e.key.len(), 0);
                } else {
                    moved.push(Moved {
                        key: e.key.clone().into_boxed_slice(),
                        old: Location {
                            segment: candidate.id,
                            value_offset: e.value_offset,
                            value_len: e.value_len,
                            lsn: e.lsn,
                        },
                        new: Location {
                            segment: out.id,
                            value_offset,
                            value_len: e.value_len,
                            lsn: e.lsn,
                        },
                    });
                }
                out.entries.push(HintEntry {
                    key: e.key.clone(),
                    lsn: e.lsn,
                    value_offset,
                    value_len: e.value_len,
                    is_delete: e.is_delete,
                });
            }
        }
        Ok(())
    }

    /// Syncs an output, renames it into place and writes its hint.
    fn finish_output(&self, out: &mut Output) -> Result<()> {
        out.file
            .sync_data()
            .ctx(|| format!("syncing compacted segment {}", out.id))?;
        let path = segment_path(&self.dir, out.id);
        fs::rename(path.with_extension("seg.tmp"), &path)
            .ctx(|| format!("renaming {} into place", path.display()))?;
        let content = Hint {
            segment_len: out.len,
            entries: std::mem::take(&mut out.entries),
        };
        hint::write(&self.dir, out.id, &content)?;
        out.segment.has_hint = true;
        Ok(())
    }
}

fn write_marker(dir: &Path, doomed: &[SegmentId]) -> Result<()> {
    let mut body: Vec<u8> = doomed.iter().flat_map(|id| id.to_le_bytes()).collect();
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    let path = dir.join(MARKER_FILE_NAME);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, &body).ctx(|| format!("writing {}", tmp.display()))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("syncing {}", tmp.display()))?;
    fs::rename(&tmp, &path).ctx(|| format!("renaming {} into place", path.display()))
}

/// Deletes the segments a finished compaction replaced, then its marker. Also run at open,
/// to finish a deletion a crash interrupted.
pub(crate) fn finish_deletion(
    dir: &Path,
    doomed: &[SegmentId],
    vfs: &dyn crate::io::Vfs,
) -> Result<()> {
    for id in doomed {
        for path in [segment_path(dir, *id), hint_path(dir, *id)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
            }
        }
    }
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))?;
    let marker = dir.join(MARKER_FILE_NAME);
    match fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", marker.display()), e)),
    }
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Reads the marker of a compaction whose deletion was interrupted: `None` when absent.
pub(crate) fn read_marker(dir: &Path) -> Result<Option<Vec<SegmentId>>> {
    let path = dir.join(MARKER_FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let valid = bytes.len() >= 4 && (bytes.len() - 4) % 4 == 0 && {
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        crc32fast::hash(body).to_le_bytes() == crc
    };
    if !valid {
        return Err(Error::Corrupt {
            path,
            offset: 0,
            reason: "compaction marker fails its checksum".into(),
        });
    }
    Ok(Some(
        bytes[..bytes.len() - 4]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}
