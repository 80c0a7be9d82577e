//! A segment roll whose new log segment cannot be written (ENOSPC on its header, say) poisons
//! the store and leaves an empty (or half-written) segment file behind. Recovery used to
//! remove such a file only when it was the newest segment file, and a compaction already
//! running when the roll failed went on past the poison, allocating higher ids for its
//! outputs and committing its swap: every later open refused the store as `Corrupt`, though
//! no acknowledged write was lost. Now the compaction gives up once the store is poisoned,
//! and recovery removes a cut-short segment that no later log segment follows.
mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use common::TestResult;
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Options, SyncPolicy};

#[derive(Debug)]
struct Control {
    /// Pause the first opening of a compaction output until told to go on.
    pause_first_tmp: AtomicBool,
    paused: Mutex<Option<Sender<()>>>,
    resume: Mutex<Option<Receiver<()>>>,
    /// New log segments created while set fail every write (as on a full disk).
    fail_new_log_segments: AtomicBool,
}

#[derive(Debug, Clone)]
struct Seam(Arc<Control>);

#[derive(Debug)]
struct FailingFile(Arc<dyn FileIo>);

impl FileIo for FailingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Err(io::Error::other("injected write failure (no space left)"))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.0.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Vfs for Seam {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        let name = path.to_string_lossy().to_string();
        if name.ends_with(".seg.tmp") && self.0.pause_first_tmp.swap(false, Ordering::SeqCst) {
            if let Some(tx) = self.0.paused.lock().take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.0.resume.lock().take() {
                let _ = rx.recv_timeout(Duration::from_secs(20));
            }
        }
        let file = OsVfs.open(path, create)?;
        if create && name.ends_with(".seg") && self.0.fail_new_log_segments.load(Ordering::SeqCst) {
            return Ok(Arc::new(FailingFile(file)));
        }
        Ok(file)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}

#[test]
fn a_roll_that_fails_while_a_compaction_runs_leaves_a_store_that_reopens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (paused_tx, paused_rx) = channel();
    let (resume_tx, resume_rx) = channel();
    let control = Arc::new(Control {
        pause_first_tmp: AtomicBool::new(false),
        paused: Mutex::new(Some(paused_tx)),
        resume: Mutex::new(Some(resume_rx)),
        fail_new_log_segments: AtomicBool::new(false),
    });
    let opts = |vfs: Arc<dyn Vfs>| {
        Options::new()
            .sync_policy(SyncPolicy::Always)
            .segment_bytes(4096)
            .auto_compaction(false)
            .vfs(vfs)
    };
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    {
        let store = opts(Arc::new(Seam(control.clone()))).open(dir.path())?;
        // Enough live data for several compaction outputs (records of ~64 KiB each).
        for i in 0..2500u32 {
            let (k, v) = (
                format!("key{i:05}"),
                format!("value-{i}-{}", "x".repeat(100)),
            );
            store.put(&k, &v)?;
            model.insert(k.into_bytes(), v.into_bytes());
        }
        control.pause_first_tmp.store(true, Ordering::SeqCst);
        let compactor = {
            let store = store.clone();
            std::thread::spawn(move || store.compact())
        };
        paused_rx.recv_timeout(Duration::from_secs(20))?;
        // The compaction sealed the active segment and is writing its first output. A writer
        // fills the new active segment, and the next put rolls it: its new segment fails.
        let big = "b".repeat(3000);
        store.put("filler", &big)?;
        model.insert(b"filler".to_vec(), big.into_bytes());
        control.fail_new_log_segments.store(true, Ordering::SeqCst);
        let failed = store.put("rolls", "r".repeat(2000));
        assert!(failed.is_err(), "the failed roll surfaces: {failed:?}");
        control.fail_new_log_segments.store(false, Ordering::SeqCst);
        resume_tx.send(())?;
        let compacted = compactor.join().map_err(|_| "compactor panicked")?;
        eprintln!("compact() on the poisoned store returned {compacted:?}");
    }
    // No acknowledged write was lost and nothing is damaged: the store must reopen.
    let store = match opts(Arc::new(OsVfs)).open(dir.path()) {
        Ok(store) => store,
        Err(e) => return Err(format!("an intact store failed to reopen: {e}").into()),
    };
    for (k, v) in &model {
        assert_eq!(
            store.get(k)?.as_ref(),
            Some(v),
            "key {}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(store.get("rolls")?, None);
    Ok(())
}
