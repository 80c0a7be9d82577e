//! Helpers shared by the integration tests: an independent reader of the on-disk format
//! (so tests do not trust the engine's own parser to say what a file holds), directory
//! copies for simulating crashes, and a guard that never leaves a child process running.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Child;

/// What every test returns.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Size of a segment header (magic, version, flags, id, end check, lsn_mark, salt, crc).
pub const SEGMENT_HEADER_BYTES: u64 = 40;
/// Size of a record header (crc, body_len, lsn, op_count, synced_gap).
pub const RECORD_HEADER_BYTES: u64 = 24;

/// A segment file as the tests see it.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    pub id: u32,
    pub path: PathBuf,
    pub compacted: bool,
    pub lsn_mark: u64,
    pub len: u64,
}

/// One record of a segment: where it starts, how long it is, its LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    pub offset: u64,
    pub len: u64,
    pub lsn: u64,
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The `NNNNNNNNNN.seg` files of `dir` with a readable header, by id.
pub fn segments(dir: &Path) -> TestResult<Vec<SegmentFile>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        let Ok(id) = stem.parse::<u32>() else {
            continue;
        };
        let bytes = fs::read(entry.path())?;
        let (compacted, lsn_mark) = if bytes.len() >= SEGMENT_HEADER_BYTES as usize {
            (u32_at(&bytes, 12) & 1 == 1, u64_at(&bytes, 24))
        } else {
            (false, 0)
        };
        out.push(SegmentFile {
            id,
            path: entry.path(),
            compacted,
            lsn_mark,
            len: bytes.len() as u64,
        });
    }
    out.sort_by_key(|s| s.id);
    Ok(out)
}

/// The segment being appended to: the highest-id segment that is not a compaction output.
pub fn active_segment(dir: &Path) -> TestResult<SegmentFile> {
    segments(dir)?
        .into_iter()
        .rev()
        .find(|s| !s.compacted)
        .ok_or_else(|| "no log segment in the directory".into())
}

/// The sealed log segments (not compaction outputs, not the active one).
pub fn sealed_log_segments(dir: &Path) -> TestResult<Vec<SegmentFile>> {
    let active = active_segment(dir)?.id;
    Ok(segments(dir)?
        .into_iter()
        .filter(|s| !s.compacted && s.id != active)
        .collect())
}

/// The whole records of a segment file, parsed from their length fields only; stops at the
/// first record that runs past the end of the file or at zeros (preallocated space).
pub fn records(path: &Path) -> TestResult<Vec<RecordSpan>> {
    let bytes = fs::read(path)?;
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER_BYTES as usize;
    while pos + RECORD_HEADER_BYTES as usize <= bytes.len() {
        // Zeros are preallocated space past the last record, not a record.
        if bytes[pos..pos + RECORD_HEADER_BYTES as usize]
            .iter()
            .all(|b| *b == 0)
        {
            break;
        }
        let len = RECORD_HEADER_BYTES + u64::from(u32_at(&bytes, pos + 4));
        if pos as u64 + len > bytes.len() as u64 {
            break;
        }
        out.push(RecordSpan {
            offset: pos as u64,
            len,
            lsn: u64_at(&bytes, pos + 8),
        });
        pos += len as usize;
    }
    Ok(out)
}

/// The hint file of segment `id`.
pub fn hint_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}.hint"))
}

/// The segment file of segment `id`.
pub fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}.seg"))
}

/// Encodes a segment header the way the engine does (for forging files in crash states).
pub fn segment_header(id: u32, compacted: bool, lsn_mark: u64) -> Vec<u8> {
    let mut buf = vec![0u8; SEGMENT_HEADER_BYTES as usize];
    buf[0..8].copy_from_slice(b"KVSTSEG\0");
    buf[8..12].copy_from_slice(&3u32.to_le_bytes());
    buf[12..16].copy_from_slice(&u32::from(compacted).to_le_bytes());
    buf[16..20].copy_from_slice(&id.to_le_bytes());
    buf[24..32].copy_from_slice(&lsn_mark.to_le_bytes());
    buf[32..36].copy_from_slice(&0x5a17u32.to_le_bytes());
    let crc = crc32fast::hash(&buf[..36]);
    buf[36..40].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Copies the regular files of `from` into `to` (created), skipping the lock file. A file
/// that vanishes while the copy runs (a background hint written to a temporary name and
/// renamed) is left out, as a crash at that moment could leave it.
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "LOCK" {
            match fs::copy(entry.path(), to.join(entry.file_name())) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Truncates `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    fs::OpenOptions::new().write(true).open(path)?.set_len(len)
}

/// Flips one bit of a file.
pub fn flip_bit(path: &Path, bit: u64) -> io::Result<()> {
    let mut bytes = fs::read(path)?;
    bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
    fs::write(path, bytes)
}

/// Every (key, value) of the store in key order.
pub fn dump(store: &kvstore_core::KvStore) -> kvstore_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    store.iter().collect()
}

/// A child process that is SIGKILLed and reaped when dropped, whatever happens in the test.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// SIGKILLs the child (by its PID, through `Child::kill`) and reaps it.
    pub fn kill(&mut self) -> io::Result<()> {
        match self.0.kill() {
            Ok(()) => {}
            // Already exited: nothing to kill, still reap it below.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => return Err(e),
        }
        self.0.wait().map(|_| ())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A [`kvstore_core::io::Vfs`] over the real file system that remembers, per file (by inode,
/// so renames keep it), how many bytes the engine has made durable with `sync_data`. A test
/// simulates a power loss by cutting files back towards that length: whatever the engine did
/// not sync may vanish, whatever it synced must stay.
#[derive(Debug, Default)]
pub struct SyncTrackingVfs {
    synced: std::sync::Mutex<std::collections::HashMap<u64, std::sync::Arc<SyncedLen>>>,
}

/// Durable length of one file.
#[derive(Debug, Default)]
pub struct SyncedLen(std::sync::atomic::AtomicU64);

#[derive(Debug)]
struct TrackedFile {
    inner: std::sync::Arc<dyn kvstore_core::io::FileIo>,
    synced: std::sync::Arc<SyncedLen>,
}

impl kvstore_core::io::FileIo for TrackedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()?;
        let len = self.inner.size()?;
        self.synced
            .0
            .store(len, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.synced
            .0
            .fetch_min(len, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl kvstore_core::io::Vfs for SyncTrackingVfs {
    fn open(
        &self,
        path: &Path,
        create: bool,
    ) -> io::Result<std::sync::Arc<dyn kvstore_core::io::FileIo>> {
        use std::os::unix::fs::MetadataExt;
        let inner = kvstore_core::io::OsVfs.open(path, create)?;
        let meta = fs::metadata(path)?;
        let mut map = self
            .synced
            .lock()
            .map_err(|_| io::Error::other("tracking map poisoned"))?;
        // A file met for the first time holds what a previous run (or crash) left on disk:
        // all of it is as durable as it will ever be. A created file may reuse the inode
        // of a deleted one, so it starts afresh.
        let fresh = || std::sync::Arc::new(SyncedLen(meta.len().into()));
        let synced = if create {
            let entry = fresh();
            map.insert(meta.ino(), entry.clone());
            entry
        } else {
            map.entry(meta.ino()).or_insert_with(fresh).clone()
        };
        Ok(std::sync::Arc::new(TrackedFile { inner, synced }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        kvstore_core::io::OsVfs.sync_dir(dir)
    }
}

impl SyncTrackingVfs {
    /// Bytes of `path` known durable; a file never opened through this seam counts as
    /// wholly durable.
    pub fn synced_len(&self, path: &Path) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path)?;
        let map = self
            .synced
            .lock()
            .map_err(|_| io::Error::other("tracking map poisoned"))?;
        Ok(map.get(&meta.ino()).map_or(meta.len(), |s| {
            s.0.load(std::sync::atomic::Ordering::SeqCst)
        }))
    }

    /// Forgets every file: call after a simulated crash, when what is on disk is durable.
    pub fn reset(&self) -> io::Result<()> {
        self.synced
            .lock()
            .map_err(|_| io::Error::other("tracking map poisoned"))?
            .clear();
        Ok(())
    }
}

/// Bytes of a page as the power-loss model sees a disk write: each 4 KiB page written since
/// its file's last `sync_data` reaches the disk whole or not at all, independently.
pub const PAGE_BYTES: u64 = 4096;

/// A [`kvstore_core::io::Vfs`] over the real file system that keeps, for every page written
/// since its file's last `sync_data`, what the page held at that sync, so that a test can
/// build the directory a power loss might leave behind: any subset of those pages reverted
/// ([`PageLossVfs::power_loss_copy`]). Unlike [`SyncTrackingVfs`], it models unsynced
/// writes inside a file's existing length too (the log writes into preallocated zeros),
/// where a later page can reach the disk while an earlier one does not.
#[derive(Debug, Default)]
pub struct PageLossVfs {
    /// Per file (by inode): page number → the page's bytes at the last sync.
    dirty: std::sync::Mutex<std::collections::HashMap<u64, std::sync::Arc<DirtyPages>>>,
    /// Every `sync_data` fails from now on (the disk went away mid-commit).
    failing_syncs: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The pages of one file written since its last sync, as they were at that sync.
#[derive(Debug, Default)]
pub struct DirtyPages(std::sync::Mutex<std::collections::BTreeMap<u64, Vec<u8>>>);

#[derive(Debug)]
struct PageLossFile {
    inner: std::sync::Arc<dyn kvstore_core::io::FileIo>,
    dirty: std::sync::Arc<DirtyPages>,
    failing_syncs: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PageLossFile {
    fn pages(
        &self,
    ) -> io::Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Vec<u8>>>> {
        self.dirty
            .0
            .lock()
            .map_err(|_| io::Error::other("dirty page map poisoned"))
    }
}

impl kvstore_core::io::FileIo for PageLossFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !buf.is_empty() {
            let mut pages = self.pages()?;
            let size = self.inner.size()?;
            let last = (offset + buf.len() as u64 - 1) / PAGE_BYTES;
            for page in offset / PAGE_BYTES..=last {
                if pages.contains_key(&page) {
                    continue;
                }
                // What the disk holds for this page until a sync: its bytes now, zeros
                // past the file's end.
                let start = page * PAGE_BYTES;
                let mut before = vec![0u8; PAGE_BYTES as usize];
                let have = size.saturating_sub(start).min(PAGE_BYTES) as usize;
                self.inner.read_exact_at(&mut before[..have], start)?;
                pages.insert(page, before);
            }
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.failing_syncs.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::other("injected sync failure"));
        }
        let mut pages = self.pages()?;
        self.inner.sync_data()?;
        pages.clear();
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl kvstore_core::io::Vfs for PageLossVfs {
    fn open(
        &self,
        path: &Path,
        create: bool,
    ) -> io::Result<std::sync::Arc<dyn kvstore_core::io::FileIo>> {
        use std::os::unix::fs::MetadataExt;
        let inner = kvstore_core::io::OsVfs.open(path, create)?;
        let ino = fs::metadata(path)?.ino();
        let mut map = self
            .dirty
            .lock()
            .map_err(|_| io::Error::other("dirty map poisoned"))?;
        // A created file may reuse the inode of a deleted one: it starts clean.
        let dirty = if create {
            let entry = std::sync::Arc::new(DirtyPages::default());
            map.insert(ino, entry.clone());
            entry
        } else {
            map.entry(ino).or_default().clone()
        };
        Ok(std::sync::Arc::new(PageLossFile {
            inner,
            dirty,
            failing_syncs: self.failing_syncs.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        kvstore_core::io::OsVfs.sync_dir(dir)
    }
}

impl PageLossVfs {
    /// Makes every later `sync_data` fail, leaving what was written since the last one
    /// unsynced for [`power_loss_copy`](Self::power_loss_copy) to tear.
    pub fn fail_syncs(&self) {
        self.failing_syncs
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Copies the files of `from` into `to` (created), reverting each page written since its
    /// file's last sync to its synced bytes where `lose(path, page)` says so: the directory a
    /// power loss could leave. Returns how many pages were reverted. Call while the store
    /// writes nothing (a background hint write may still come and go: a file that vanishes
    /// while listed is left out, as if the loss came before it).
    pub fn power_loss_copy(
        &self,
        from: &Path,
        to: &Path,
        mut lose: impl FnMut(&Path, u64) -> bool,
    ) -> io::Result<usize> {
        use std::os::unix::fs::MetadataExt;
        fs::create_dir_all(to)?;
        let map = self
            .dirty
            .lock()
            .map_err(|_| io::Error::other("dirty map poisoned"))?;
        let mut reverted = 0;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let path = entry.path();
            if !entry.file_type()?.is_file() {
                continue;
            }
            let (mut bytes, meta) = match (fs::read(&path), entry.metadata()) {
                (Ok(bytes), Ok(meta)) => (bytes, meta),
                (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => continue,
                (Err(e), _) | (_, Err(e)) => return Err(e),
            };
            if let Some(dirty) = map.get(&meta.ino()) {
                let pages = dirty
                    .0
                    .lock()
                    .map_err(|_| io::Error::other("dirty page map poisoned"))?;
                for (page, before) in pages.iter() {
                    let start = (page * PAGE_BYTES) as usize;
                    if start >= bytes.len() || !lose(&path, *page) {
                        continue;
                    }
                    let end = (start + before.len()).min(bytes.len());
                    bytes[start..end].copy_from_slice(&before[..end - start]);
                    reverted += 1;
                }
            }
            fs::write(to.join(entry.file_name()), bytes)?;
        }
        Ok(reverted)
    }
}
