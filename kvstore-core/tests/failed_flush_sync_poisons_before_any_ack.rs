//! A `flush()` whose fsync fails races a commit leader's fsync (SyncPolicy::Always).
//!
//! Linux reports a writeback error to the first fsync on a file description that checks it
//! (errseq_t); the pages that failed are marked clean, so a later fsync of the same file
//! returns 0 although those bytes never reached the disk ("fsyncgate"). The store shares one
//! file handle between `flush()` and the commit leader, and nothing serialised their syncs
//! with the poisoning: a group whose bytes were in the failed writeback was acknowledged as
//! durable, and lost on power loss. Now each sync of the log and the poisoning its failure
//! causes happen under one lock, so the leader's sync that follows a failed one finds the
//! store poisoned (DESIGN.md §3: "an fsync failure poisons the store for writes").
//!
//! The VFS below makes the interleaving deterministic: the leader's fsync is held until
//! flush's fsync has failed (and the dirty range is recorded as lost, as the kernel drops
//! it), and flush's failing fsync returns only after the put returned (or 3 s passed: with
//! the lock, the put waits for it).

mod common;

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{KvStore, Options, SyncPolicy};

thread_local! {
    static ROLE: Cell<u8> = const { Cell::new(0) };
}
const LEADER: u8 = 1;
const FLUSHER: u8 = 2;

#[derive(Debug, Default)]
struct Ctl {
    armed: AtomicBool,
    leader_in_sync: AtomicBool,
    flush_failed: AtomicBool,
    put_returned: AtomicBool,
    lost: Mutex<Vec<(PathBuf, u64, usize)>>,
}

fn wait_until(flag: &AtomicBool, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while !flag.load(Ordering::SeqCst) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[derive(Debug, Clone, Default)]
struct GateVfs(Arc<Ctl>);

#[derive(Debug)]
struct GateFile {
    inner: Arc<dyn FileIo>,
    path: PathBuf,
    dirty: Mutex<Vec<(u64, usize)>>,
    ctl: Arc<Ctl>,
}

impl FileIo for GateFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((offset, buf.len()));
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.ctl.armed.load(Ordering::SeqCst) {
            match ROLE.with(Cell::get) {
                LEADER => {
                    // The leader's fsync starts after flush's failed one.
                    self.ctl.leader_in_sync.store(true, Ordering::SeqCst);
                    wait_until(&self.ctl.flush_failed, Duration::from_secs(3));
                }
                FLUSHER => {
                    // Writeback fails: the dirty pages are dropped (marked clean).
                    let lost: Vec<_> = std::mem::take(
                        &mut *self
                            .dirty
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    );
                    let mut all = self
                        .ctl
                        .lost
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    all.extend(lost.into_iter().map(|(o, l)| (self.path.clone(), o, l)));
                    drop(all);
                    self.ctl.flush_failed.store(true, Ordering::SeqCst);
                    // The flushing thread is descheduled before it returns.
                    wait_until(&self.ctl.put_returned, Duration::from_secs(3));
                    return Err(io::Error::other("injected EIO (writeback failed)"));
                }
                _ => {}
            }
        }
        // The error was reported to the other fsync: this one returns 0, and the pages it
        // would have written are clean (already lost), so nothing more becomes durable.
        self.inner.sync_data()?;
        self.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Vfs for GateVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(GateFile {
            inner: OsVfs.open(path, create)?,
            path: path.to_path_buf(),
            dirty: Mutex::new(Vec::new()),
            ctl: self.0.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

#[test]
fn a_write_in_a_failed_flush_writeback_is_not_acknowledged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = GateVfs::default();
    let ctl = vfs.0.clone();
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .auto_compaction(false)
        .vfs(Arc::new(vfs.clone()))
        .open(dir.path())?;
    for i in 0..5 {
        store.put(format!("warm{i}"), "v")?;
    }
    ctl.armed.store(true, Ordering::SeqCst);

    let writer = {
        let (store, ctl) = (store.clone(), ctl.clone());
        std::thread::spawn(move || {
            ROLE.with(|r| r.set(LEADER));
            let r = store.put("acked", "must-survive");
            ctl.put_returned.store(true, Ordering::SeqCst);
            r
        })
    };
    assert!(
        wait_until(&ctl.leader_in_sync, Duration::from_secs(5)),
        "the put's leader never reached its fsync"
    );
    let flusher = {
        let store = store.clone();
        std::thread::spawn(move || {
            ROLE.with(|r| r.set(FLUSHER));
            store.flush()
        })
    };
    let put = writer.join().map_err(|_| "writer panicked")?;
    let flushed = flusher.join().map_err(|_| "flusher panicked")?;
    ctl.armed.store(false, Ordering::SeqCst);
    assert!(flushed.is_err(), "flush's fsync failed, flush must say so");

    // Power loss: the bytes of the failed writeback never reached the disk.
    let lost = ctl
        .lost
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    drop(store);
    let crashed = tempfile::tempdir()?;
    common::copy_dir(dir.path(), crashed.path())?;
    for (path, offset, len) in &lost {
        let copy = crashed.path().join(
            path.file_name()
                .ok_or("a segment path without a file name")?,
        );
        if copy.exists() {
            let f = std::fs::OpenOptions::new().write(true).open(&copy)?;
            std::os::unix::fs::FileExt::write_all_at(&f, &vec![0u8; *len], *offset)?;
        }
    }
    let reopened = KvStore::open(crashed.path())?;
    let survived = reopened.get("acked")?;
    if let Ok(lsn) = put {
        assert_eq!(
            survived.as_deref(),
            Some(&b"must-survive"[..]),
            "put was acknowledged durable (Ok({lsn})) under SyncPolicy::Always after the \
             fsync covering its bytes had failed (flush: {flushed:?}); it is lost after a \
             power loss"
        );
    }
    Ok(())
}
