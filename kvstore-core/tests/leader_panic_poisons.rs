//! A commit leader that panics while writing its group (a bug, or a file layer that panics)
//! must not leave later writers waiting for its turn for ever: the store is poisoned for
//! writes, later writes get the error at once, and reads go on.
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Error, Options, SyncPolicy};

/// Real files whose next write panics once `armed` is set.
#[derive(Debug, Default)]
struct PanickingVfs {
    armed: Arc<AtomicBool>,
}

#[derive(Debug)]
struct PanickingFile {
    inner: Arc<dyn FileIo>,
    armed: Arc<AtomicBool>,
}

#[allow(clippy::panic)] // the point of the test
impl FileIo for PanickingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.armed.swap(false, Ordering::AcqRel) {
            panic!("a file layer with a bug");
        }
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

impl Vfs for PanickingVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(PanickingFile {
            inner: OsVfs.open(path, create)?,
            armed: self.armed.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

#[test]
fn a_leader_that_panics_mid_write_poisons_instead_of_blocking_later_writers() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = PanickingVfs::default();
    let armed = vfs.armed.clone();
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .vfs(Arc::new(vfs))
        .open(dir.path())
        .unwrap();
    store.put("before", "1").unwrap();
    armed.store(true, Ordering::Release);
    let s = store.clone();
    let panicked = std::thread::spawn(move || s.put("during", "2")).join();
    assert!(panicked.is_err(), "the write's leader panicked");

    let (tx, rx) = std::sync::mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        let _ = tx.send(s.put("after", "3"));
    });
    let later = rx.recv_timeout(Duration::from_secs(5));
    assert!(
        matches!(later, Ok(Err(Error::Poisoned { .. }))),
        "a later write must fail at once, not wait for the dead leader: {later:?}"
    );
    assert_eq!(store.get("before").unwrap(), Some(b"1".to_vec()));
}
