//! Atomic replacement of a set of segments by another, used by compaction and by snapshot
//! installation.
//!
//! New segments are written as `NNNNNNNNNN.seg.tmp` (with their hint files), then a marker
//! listing the segments to install and the segments to delete is made durable. Only then are
//! the new ones renamed into place and the old ones deleted. Recovery finishes a marker it
//! finds, and otherwise deletes `.tmp` files, so after a crash either the old set or the new
//! one is on disk, never a mix that could bring a deleted key back.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::Vfs;
use crate::wal::record::read_u32;
use crate::wal::segment::{hint_path, segment_path, SegmentId};

/// Name of the marker file of a swap in progress.
pub(crate) const MARKER_FILE_NAME: &str = "SEGMENT_SWAP";

/// Which segments a swap installs and which it deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SwapPlan {
    pub install: Vec<SegmentId>,
    pub delete: Vec<SegmentId>,
}

/// Where a not-yet-installed segment is written.
pub(crate) fn pending_path(dir: &Path, id: SegmentId) -> PathBuf {
    segment_path(dir, id).with_extension("seg.tmp")
}

impl SwapPlan {
    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        for list in [&self.install, &self.delete] {
            buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for id in list {
                buf.extend_from_slice(&id.to_le_bytes());
            }
        }
        let crc = crate::wal::checksum::crc32(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        let body = buf.len().checked_sub(4)?;
        if crate::wal::checksum::crc32(&buf[..body]) != read_u32(buf, body) {
            return None;
        }
        let mut pos = 0;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            if pos + 4 > body {
                return None;
            }
            let n = read_u32(buf, pos) as usize;
            pos += 4;
            if n > (body - pos) / 4 {
                return None;
            }
            for _ in 0..n {
                list.push(read_u32(buf, pos));
                pos += 4;
            }
        }
        (pos == body).then(|| {
            let [install, delete] = lists;
            SwapPlan { install, delete }
        })
    }
}

/// A swap that could not be committed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// Failed before the marker was renamed into place: the swap did not happen, and the
    /// caller removes the segments it wrote for it.
    NotCommitted(Error),
    /// The marker is in place but the directory could not be synced, so whether it survives
    /// a crash is unknown. The swap must be treated as committed: its new segments stay (a
    /// reopen finishes the swap with them, as after a crash), and the caller, whose files no
    /// longer match what it serves, poisons the store. Removing the new segments instead left
    /// a marker that the next open carried out without them, deleting the old ones too.
    Undecided(Error),
}

/// Makes the plan durable; from here on the swap completes even across a crash.
pub(crate) fn commit(
    dir: &Path,
    plan: &SwapPlan,
    vfs: &dyn Vfs,
) -> std::result::Result<(), CommitError> {
    let path = dir.join(MARKER_FILE_NAME);
    let tmp = path.with_extension("tmp");
    (|| {
        fs::write(&tmp, plan.encode()).ctx(|| format!("writing {}", tmp.display()))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, &path).ctx(|| format!("renaming {} into place", path.display()))
    })()
    .map_err(CommitError::NotCommitted)?;
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))
        .map_err(CommitError::Undecided)
}

/// Carries out a committed plan: installs, deletes, then removes the marker. Idempotent.
/// Deletes nothing unless every segment the plan installs is in place: a plan whose new
/// segments are gone would otherwise delete the only copy of the data.
pub(crate) fn apply(dir: &Path, plan: &SwapPlan, vfs: &dyn Vfs) -> Result<()> {
    for id in &plan.install {
        let pending = pending_path(dir, *id);
        let installed = segment_path(dir, *id);
        match fs::rename(&pending, &installed) {
            Ok(()) => {}
            // Installed before a crash, unless it is missing altogether.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !installed
                    .try_exists()
                    .ctx(|| format!("checking {}", installed.display()))?
                {
                    return Err(Error::Corrupt {
                        path: dir.join(MARKER_FILE_NAME),
                        offset: 0,
                        reason: format!(
                            "the segment swap installs segment {id}, which is neither at {} \
                             nor at {}; the segments it would replace are kept",
                            pending.display(),
                            installed.display()
                        ),
                    });
                }
            }
            Err(e) => return Err(Error::io(format!("installing {}", pending.display()), e)),
        }
    }
    for id in &plan.delete {
        for path in [segment_path(dir, *id), hint_path(dir, *id)] {
            remove_if_present(&path)?;
        }
    }
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))?;
    remove_if_present(&dir.join(MARKER_FILE_NAME))?;
    vfs.sync_dir(dir)
        .ctx(|| format!("syncing directory {}", dir.display()))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Finishes a swap a crash interrupted, if its marker is there.
pub(crate) fn recover(dir: &Path, vfs: &dyn Vfs) -> Result<()> {
    let path = dir.join(MARKER_FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let plan = SwapPlan::decode(&bytes).ok_or_else(|| Error::Corrupt {
        path: path.clone(),
        offset: 0,
        reason: "segment swap marker fails its checksum".into(),
    })?;
    tracing::info!(?plan, "finishing an interrupted segment swap");
    apply(dir, &plan, vfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trip_and_damage() {
        let plan = SwapPlan {
            install: vec![7, 8],
            delete: vec![1, 2, 3],
        };
        let buf = plan.encode();
        assert_eq!(SwapPlan::decode(&buf), Some(plan));
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(SwapPlan::decode(&bad), None, "bit {bit}");
        }
    }

    #[test]
    fn a_plan_whose_new_segments_are_gone_deletes_nothing() -> Result<()> {
        let dir = tempfile::tempdir().ctx(|| "tempdir".to_string())?;
        let old = segment_path(dir.path(), 1);
        fs::write(&old, b"the only copy").ctx(|| "writing".to_string())?;
        let plan = SwapPlan {
            install: vec![2],
            delete: vec![1],
        };
        let result = apply(dir.path(), &plan, &crate::io::OsVfs);
        assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
        assert!(old.exists());
        Ok(())
    }
}
