//! Under `SyncPolicy::EveryMillis(n)` at most about n ms of acknowledged writes may be lost
//! on power loss (DESIGN §3), compaction or not. The periodic sync used to run on the thread
//! that also runs automatic compaction, synchronously: while a compaction ran (copying a
//! large store, or syncing its outputs on a slow disk) no periodic sync happened, so writes
//! acknowledged meanwhile stayed unsynced for the whole compaction. The same held for an
//! explicit `compact()` on a user thread: the background thread took the hint job of the
//! segment it sealed and waited on the compaction lock. The sync now has a thread of its own.
//!
//! The file seam makes the compaction's first output sync take 2 s (a slow disk, or a big
//! output); a put made during it must still be synced within a few periods of 20 ms.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{KvStore, Options, SyncPolicy};

#[derive(Debug, Default)]
struct Seam {
    /// A compaction output's sync is under way (slowed down).
    compaction_syncing: AtomicBool,
    slowed_once: AtomicBool,
    /// Syncs of log segment files (`.seg`, not compaction outputs).
    log_syncs: AtomicU64,
}

#[derive(Debug)]
struct SeamFile {
    inner: Arc<dyn FileIo>,
    path: PathBuf,
    seam: Arc<Seam>,
}

impl FileIo for SeamFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let name = self.path.to_string_lossy();
        if name.ends_with(".seg.tmp") {
            if !self.seam.slowed_once.swap(true, Ordering::SeqCst) {
                self.seam.compaction_syncing.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(2));
            }
        } else if name.ends_with(".seg") {
            self.seam.log_syncs.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.sync_data()
    }
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn seal(&self) -> std::io::Result<()> {
        self.inner.seal()
    }
    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }
}

#[derive(Debug)]
struct SeamVfs(Arc<Seam>);

impl Vfs for SeamVfs {
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(SeamFile {
            inner: OsVfs.open(path, create)?,
            path: path.to_path_buf(),
            seam: self.0.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

/// Puts a probe and returns how long it stayed unsynced: until the next sync of a log
/// segment (at most 5 s).
fn unsynced_time_of_a_put(store: &KvStore, seam: &Seam) -> TestResult<Duration> {
    store.put(b"probe", b"acknowledged")?;
    let syncs = seam.log_syncs.load(Ordering::SeqCst);
    let put_at = Instant::now();
    while seam.log_syncs.load(Ordering::SeqCst) == syncs
        && put_at.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(put_at.elapsed())
}

#[test]
fn writes_acknowledged_during_an_automatic_compaction_are_synced_within_the_period() -> TestResult {
    let dir = tempfile::tempdir()?;
    let base = || {
        Options::new()
            .segment_bytes(16 << 10)
            .compaction_dead_ratio(0.4)
            .compaction_min_dead_bytes(1 << 10)
            .maintenance_interval(Duration::from_millis(10))
    };
    {
        // Sealed segments full of overwritten values.
        let store = base()
            .sync_policy(SyncPolicy::Never)
            .auto_compaction(false)
            .open(dir.path())?;
        for round in 0..4u8 {
            for i in 0..200u32 {
                store.put(format!("key{i:04}"), vec![round; 100])?;
            }
        }
    }
    let seam = Arc::new(Seam::default());
    let store = base()
        .sync_policy(SyncPolicy::EveryMillis(20))
        .vfs(Arc::new(SeamVfs(seam.clone())))
        .open(dir.path())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seam.compaction_syncing.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "automatic compaction never started: {:?}",
            store.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Automatic compaction is under way on the background thread. An acknowledged write:
    let unsynced_for = unsynced_time_of_a_put(&store, &seam)?;
    assert!(
        unsynced_for < Duration::from_millis(500),
        "SyncPolicy::EveryMillis(20): a write acknowledged during an automatic compaction \
         stayed unsynced for {unsynced_for:?} (the background sync waited for the compaction)"
    );
    Ok(())
}

#[test]
fn writes_acknowledged_during_an_explicit_compaction_are_synced_within_the_period() -> TestResult {
    let dir = tempfile::tempdir()?;
    let seam = Arc::new(Seam::default());
    let store = Options::new()
        .segment_bytes(16 << 10)
        .auto_compaction(false)
        .maintenance_interval(Duration::from_millis(10))
        .sync_policy(SyncPolicy::EveryMillis(20))
        .vfs(Arc::new(SeamVfs(seam.clone())))
        .open(dir.path())?;
    for round in 0..4u8 {
        for i in 0..200u32 {
            store.put(format!("key{i:04}"), vec![round; 100])?;
        }
    }
    std::thread::scope(|s| -> TestResult {
        let compactor = s.spawn(|| store.compact());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seam.compaction_syncing.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the compaction never synced an output"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let unsynced_for = unsynced_time_of_a_put(&store, &seam)?;
        compactor.join().map_err(|_| "compactor panicked")??;
        assert!(
            unsynced_for < Duration::from_millis(500),
            "SyncPolicy::EveryMillis(20): a write acknowledged during compact() stayed \
             unsynced for {unsynced_for:?} (the background thread waited on the compaction \
             lock to write a hint)"
        );
        Ok(())
    })
}
