//! An `open` that fails leaves nothing of itself running: no background thread, no
//! directory lock. Opening a store used to start the maintenance thread before it sealed a
//! well-filled recovered active segment; when that seal failed (ENOSPC on the new segment's
//! header, say), `open` returned the error but the thread went on, possibly in the middle of
//! an automatic compaction of the half-opened store: the directory stayed locked ("already
//! open by another process or handle") and its files kept changing after the caller was told
//! the open failed. The roll now comes before any thread starts.
//!
//! The seam orders the threads: the new active segment's header write fails once an automatic
//! compaction has opened its first output (or after 2 s, when none starts, as now), and that
//! output's creation waits until the test has tried to reopen the store.
mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use common::TestResult;
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Error, Options, SyncPolicy};

#[derive(Debug, Default)]
struct Control {
    armed: AtomicBool,
    /// (compaction started, gate released)
    flags: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Control {
    fn wait_for(&self, pick: impl Fn(&(bool, bool)) -> bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut flags = self.flags.lock();
        while !pick(&flags) {
            if self.changed.wait_until(&mut flags, deadline).timed_out() {
                return pick(&flags);
            }
        }
        true
    }
    fn set(&self, f: impl FnOnce(&mut (bool, bool))) {
        f(&mut self.flags.lock());
        self.changed.notify_all();
    }
}

#[derive(Debug, Clone, Default)]
struct Seam(Arc<Control>);

/// A new log segment file: its header write fails (no space left), once the compaction runs.
#[derive(Debug)]
struct NoSpace {
    inner: Arc<dyn FileIo>,
    control: Arc<Control>,
}

impl FileIo for NoSpace {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        self.control.wait_for(|f| f.0, Duration::from_secs(2));
        Err(io::Error::other(
            "injected write failure (no space left on device)",
        ))
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

impl Vfs for Seam {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        let name = path.to_string_lossy().to_string();
        let armed = self.0.armed.load(Ordering::SeqCst);
        if armed && name.ends_with(".seg.tmp") {
            // The automatic compaction is writing its first output: hold it here.
            self.0.set(|f| f.0 = true);
            self.0.wait_for(|f| f.1, Duration::from_secs(10));
        }
        let file = OsVfs.open(path, create)?;
        if armed && create && name.ends_with(".seg") {
            return Ok(Arc::new(NoSpace {
                inner: file,
                control: self.0.clone(),
            }));
        }
        Ok(file)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

fn options(vfs: Arc<dyn Vfs>) -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(64 << 10)
        .compaction_dead_ratio(0.05)
        .compaction_min_dead_bytes(1)
        .maintenance_interval(Duration::from_millis(1))
        .vfs(vfs)
}

#[test]
fn a_failed_open_leaves_no_thread_running_and_the_directory_unlocked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let value = |i: u32, round: u32| format!("value-{i}-{round}-{}", "v".repeat(400));
    {
        // Sealed segments full of dead values, and a well-filled active segment.
        let store = options(Arc::new(OsVfs))
            .auto_compaction(false)
            .open(dir.path())?;
        for round in 0..2 {
            for i in 0..400u32 {
                store.put(format!("key{i:04}"), value(i, round))?;
            }
        }
        for i in 0..30u32 {
            store.put(format!("key{i:04}"), value(i, 2))?;
        }
        store.flush()?;
    }

    let seam = Seam::default();
    seam.0.armed.store(true, Ordering::SeqCst);
    let opened = options(Arc::new(seam.clone())).open(dir.path());
    let compaction_ran = seam.0.flags.lock().0;
    eprintln!(
        "open through the full disk: {:?} (automatic compaction started: {compaction_ran})",
        opened.as_ref().map(|_| ())
    );
    assert!(
        opened.is_err(),
        "the injected header failure must fail the open"
    );
    drop(opened);

    // The open failed: the directory must be free again, at once.
    let retry = options(Arc::new(OsVfs)).open(dir.path());
    let retry_result = retry.as_ref().map(|_| ()).map_err(|e| e.to_string());
    drop(retry);
    // Let the held compaction go on (if any) and wait for the lock to be released before the
    // temporary directory is checked and removed.
    seam.0.armed.store(false, Ordering::SeqCst);
    seam.0.set(|f| f.1 = true);
    let deadline = Instant::now() + Duration::from_secs(20);
    let store = loop {
        match options(Arc::new(OsVfs))
            .auto_compaction(false)
            .open(dir.path())
        {
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    for i in 0..400u32 {
        let round = if i < 30 { 2 } else { 1 };
        assert_eq!(
            store.get(format!("key{i:04}"))?,
            Some(value(i, round).into_bytes()),
            "key{i:04}"
        );
    }
    assert!(
        retry_result.is_ok(),
        "reopening right after a failed open: {retry_result:?} (the failed open's \
         maintenance thread, running an automatic compaction: {compaction_ran}, still holds \
         the store)"
    );
    Ok(())
}
