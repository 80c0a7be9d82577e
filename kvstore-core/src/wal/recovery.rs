//! Opening a store: reading segment headers and hint files, scanning what has no hint,
//! truncating a torn tail of the newest log segment, and rebuilding the index.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::index::{Location, Segment, State};
use crate::io::FileIo;
use crate::options::{Options, RecoveryMode};
use crate::wal::hint::{self, Hint, HintEntry};
use crate::wal::reader::{Next, RecordReader};
use crate::wal::record::op_disk_bytes;
use crate::wal::segment::{
    parse_hint_name, parse_segment_name, segment_path, SegmentHeader, SegmentId,
    SEGMENT_HEADER_BYTES,
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
    file_len: u64,
) -> std::io::Result<(Hint, Option<Damage>)> {
    let mut reader = RecordReader::new(file.clone(), SEGMENT_HEADER_BYTES, file_len);
    let mut entries = Vec::new();
    let damage = loop {
        match reader.next()? {
            Next::Record(rec) => {
                for span in &rec.spans {
                    entries.push(HintEntry {
                        key: rec.bytes
                            [span.key_start as usize..(span.key_start + span.key_len) as usize]
                            .to_vec(),
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
    Ok((
        Hint {
            segment_len: reader.position(),
            entries,
        },
        damage,
    ))
}

/// Rebuilds the index by LSN: for each key the entry with the highest LSN wins, whatever the
/// order segments are read in (compaction outputs hold old LSNs under new segment ids).
struct IndexBuilder {
    state: State,
    /// Deletes seen, by key, so that an older put read later stays deleted.
    tombstones: HashMap<Box<[u8]>, Lsn>,
    dead: BTreeMap<SegmentId, u64>,
}

impl IndexBuilder {
    fn add(&mut self, segment: SegmentId, e: HintEntry) {
        let bytes = op_disk_bytes(e.key.len(), e.value_len as usize);
        if e.is_delete {
            *self.dead.entry(segment).or_default() += bytes;
            if let Some(old) = self.state.index.get(e.key.as_slice()).copied() {
                // Same LSN in the same segment: a later op of one batch, which wins.
                if old.lsn < e.lsn || (old.lsn == e.lsn && old.segment == segment) {
                    self.state.index.remove(e.key.as_slice());
                    self.retire(&e.key, old);
                } else {
                    return;
                }
            }
            let slot = self.tombstones.entry(e.key.into_boxed_slice()).or_insert(0);
            *slot = (*slot).max(e.lsn);
            return;
        }
        if self
            .tombstones
            .get(e.key.as_slice())
            .is_some_and(|t| *t > e.lsn)
        {
            *self.dead.entry(segment).or_default() += bytes;
            return;
        }
        let loc = Location {
            segment,
            value_offset: e.value_offset,
            value_len: e.value_len,
            lsn: e.lsn,
        };
        match self.state.index.get(e.key.as_slice()).copied() {
            // Same LSN in another segment is a compaction copy of the same op.
            Some(old) if old.lsn > e.lsn || (old.lsn == e.lsn && old.segment != segment) => {
                *self.dead.entry(segment).or_default() += bytes;
            }
            Some(old) => {
                self.retire(&e.key, old);
                self.state.index.insert(e.key.into_boxed_slice(), loc);
                self.state.live_bytes += bytes;
            }
            None => {
                self.state.index.insert(e.key.into_boxed_slice(), loc);
                self.state.live_bytes += bytes;
            }
        }
    }

    fn retire(&mut self, key: &[u8], old: Location) {
        let bytes = op_disk_bytes(key.len(), old.value_len as usize);
        self.state.live_bytes = self.state.live_bytes.saturating_sub(bytes);
        *self.dead.entry(old.segment).or_default() += bytes;
    }
}

pub(crate) fn recover(dir: &Path, opts: &Options) -> Result<Recovered> {
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
    let newest = ids.last().copied();
    for id in &ids {
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
                headers.insert(*id, (h, file, len));
            }
            Ok(_) | Err(_) if Some(*id) == newest && len <= SEGMENT_HEADER_BYTES => {
                // Created but never completed before a crash: it cannot hold a record.
                tracing::warn!(path = %path.display(), "removing a segment whose creation was cut short");
                drop(file);
                fs::remove_file(&path).ctx(|| format!("removing {}", path.display()))?;
            }
            Ok(_) | Err(_) if opts.recovery_mode == RecoveryMode::Salvage => {
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
    let mut builder = IndexBuilder {
        state: State::default(),
        tombstones: HashMap::new(),
        dead: BTreeMap::new(),
    };
    let mut last_lsn: Lsn = 0;
    let mut segments_without_hint = Vec::new();
    let mut active_len = SEGMENT_HEADER_BYTES;
    for (id, (header, file, file_len)) in headers {
        let path = segment_path(dir, id);
        let is_active = Some(id) == active_id;
        let from_hint = if is_active {
            None
        } else {
            hint::read(dir, id)?
        };
        let has_hint = from_hint.is_some();
        let content = match from_hint {
            Some(h) => h,
            None => {
                let (scanned, damage) =
                    scan_segment(&file, file_len).ctx(|| format!("scanning {}", path.display()))?;
                if let Some(Damage {
                    offset,
                    reason,
                    torn,
                }) = damage
                {
                    if !is_active && opts.recovery_mode == RecoveryMode::TruncateTail {
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
                if !is_active {
                    segments_without_hint.push(id);
                }
                scanned
            }
        };
        let mut segment =
            Segment::new(file, content.segment_len, header.lsn_mark, header.compacted);
        segment.has_hint = has_hint;
        segment.sealed = !is_active;
        last_lsn = last_lsn.max(header.lsn_mark);
        for e in content.entries {
            segment.note_lsn(e.lsn);
            last_lsn = last_lsn.max(e.lsn);
            builder.add(id, e);
        }
        if is_active {
            active_len = content.segment_len;
        }
        builder.state.segments.insert(id, segment);
    }
    for (id, dead) in builder.dead {
        if let Some(seg) = builder.state.segments.get_mut(&id) {
            seg.dead_bytes += dead;
        }
    }
    let mut state = builder.state;
    let mut next_segment_id = state.segments.keys().next_back().map_or(1, |id| id + 1);

    let active = match active_id {
        Some(id) => match state.segments.get(&id) {
            Some(seg) => ActiveSegment {
                id,
                file: seg.file.clone(),
                len: active_len,
                allocated: seg
                    .file
                    .size()
                    .ctx(|| format!("reading size of segment {id}"))?,
                unsynced: false,
                written_lsn: last_lsn,
            },
            None => return Err(crate::store::missing_segment(dir, id)),
        },
        None => {
            let id = next_segment_id;
            next_segment_id += 1;
            let header = SegmentHeader {
                id,
                compacted: false,
                lsn_mark: last_lsn,
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
            state.segments.insert(
                id,
                Segment::new(file.clone(), SEGMENT_HEADER_BYTES, last_lsn, false),
            );
            ActiveSegment {
                id,
                file,
                len: SEGMENT_HEADER_BYTES,
                allocated: SEGMENT_HEADER_BYTES,
                unsynced: false,
                written_lsn: last_lsn,
            }
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
