//! Opening a store whose newest segment has a hole from a power loss (an unsynced page lost
//! ahead of later ones that reached the disk) reads the rest of the segment about once,
//! however many records follow the hole.
//!
//! Recovery looks past the damage for a record that says it had been synced; in a torn,
//! unsynced write none does, so it reads every record after the hole. It once re-read a
//! 1 MiB window from each such record's end: 4,000 small records after a hole read 3.7 GB for
//! a 1 MiB segment, and a default 8 MiB segment filled with small records read 143 GB (12 s).
//! Found in review.
//!
//! Sequence: `Never`, a few writes, flush, then 4,000 small unsynced puts; a power loss loses
//! only the first page written since the sync, keeping every later page. The store is
//! reopened through a VFS that counts the bytes read.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{PageLossVfs, TestResult};
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Options, SyncPolicy};

#[derive(Debug, Default)]
struct CountingVfs {
    read: Arc<AtomicU64>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Arc<dyn FileIo>,
    read: Arc<AtomicU64>,
}

impl FileIo for CountingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Vfs for CountingVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(CountingFile {
            inner: OsVfs.open(path, create)?,
            read: self.read.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

#[test]
fn opening_after_a_hole_reads_the_segment_a_bounded_number_of_times() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = Arc::new(PageLossVfs::default());
    let opts = || {
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .auto_compaction(false)
    };
    let store = opts().vfs(vfs.clone()).open(dir.path())?;
    for i in 0..10u32 {
        store.put(format!("synced{i}"), b"v")?;
    }
    store.flush()?;
    let synced = store.last_lsn();
    // HOLE_UNSYNCED_PUTS=140000 fills most of a default 8 MiB segment (for timing by hand).
    let unsynced: u32 = std::env::var("HOLE_UNSYNCED_PUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    for i in 0..unsynced {
        store.put(format!("k{i:05}"), [b'x'; 20])?;
    }
    let last = store.last_lsn();

    // Lose only the first page written since the sync: a hole with every later page kept.
    let after = tempfile::tempdir()?;
    let mut lost = None;
    vfs.power_loss_copy(dir.path(), after.path(), |path, page| {
        let seg = path.extension().is_some_and(|e| e == "seg");
        if seg && lost.is_none() {
            lost = Some(page);
            return true;
        }
        false
    })?;
    drop(store);
    assert!(lost.is_some(), "no page was lost");

    let seg_bytes: u64 = std::fs::read_dir(after.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();

    let counting = Arc::new(CountingVfs::default());
    let started = std::time::Instant::now();
    let reopened = opts().vfs(counting.clone()).open(after.path())?;
    let took = started.elapsed();
    let read = counting.read.load(Ordering::Relaxed);
    let recovered = reopened.last_lsn();
    assert!(
        (synced..last).contains(&recovered),
        "synced {synced}, last {last}, recovered {recovered}"
    );
    assert!(
        read <= 16 * seg_bytes,
        "opening read {read} bytes ({:.1} GB) in {took:?} for {seg_bytes} bytes of segment \
         files: {} times their size (records after the hole: {})",
        read as f64 / 1e9,
        read / seg_bytes.max(1),
        last - recovered
    );
    Ok(())
}
