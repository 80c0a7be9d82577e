//! Compaction never brings back an overwritten or deleted key, neither in the running store,
//! nor after reopening, nor after a crash at any point inside it. The crash points are taken
//! by a file seam that copies the whole directory every time compaction syncs a file or the
//! directory: each copy is the state a crash right after that step would leave (stale
//! `.seg.tmp` outputs, a swap marker with some or none of its renames and deletions done).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{copy_dir, dump, TestResult};
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{KvStore, Options, SyncPolicy};

/// Copies the data directory into `snapshots/N` at every sync while armed.
#[derive(Debug)]
struct SnapshottingVfs {
    data: PathBuf,
    snapshots: PathBuf,
    armed: AtomicBool,
    taken: Mutex<Vec<PathBuf>>,
}

impl SnapshottingVfs {
    fn snapshot(&self) -> std::io::Result<()> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut taken = self
            .taken
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let to = self.snapshots.join(taken.len().to_string());
        copy_dir(&self.data, &to)?;
        taken.push(to);
        Ok(())
    }
}

#[derive(Debug)]
struct SnapshottingFile {
    inner: Arc<dyn FileIo>,
    vfs: Arc<SnapshottingVfs>,
}

impl FileIo for SnapshottingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()?;
        self.vfs.snapshot()
    }
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
}

#[derive(Debug)]
struct Seam(Arc<SnapshottingVfs>);

impl Vfs for Seam {
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(SnapshottingFile {
            inner: OsVfs.open(path, create)?,
            vfs: self.0.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        OsVfs.sync_dir(dir)?;
        self.0.snapshot()
    }
}

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// Overwrites and deletes spread over many segments, so that compaction must drop old
/// values and keep the tombstones that still hide them.
fn workload(store: &KvStore, round: u32) -> TestResult {
    for i in 0..80u32 {
        store.put(
            format!("key{i:02}"),
            format!("r{round}-first-{i}-{}", "a".repeat(40)),
        )?;
    }
    for i in (0..80u32).step_by(2) {
        store.put(format!("key{i:02}"), format!("r{round}-second-{i}"))?;
    }
    for i in (0..80u32).step_by(3) {
        store.delete(format!("key{i:02}"))?;
    }
    for i in (0..80u32).step_by(9) {
        store.put(format!("key{i:02}"), format!("r{round}-revived-{i}"))?;
    }
    for i in (0..80u32).step_by(4) {
        store.delete(format!("key{i:02}"))?;
    }
    Ok(())
}

#[test]
fn a_crash_anywhere_in_compaction_resurrects_nothing() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let vfs = Arc::new(SnapshottingVfs {
        data: data.clone(),
        snapshots: root.path().join("snapshots"),
        armed: AtomicBool::new(false),
        taken: Mutex::new(Vec::new()),
    });
    let opts = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(4096)
        .auto_compaction(false)
        .vfs(Arc::new(Seam(vfs.clone())));
    let store = opts.clone().open(&data)?;
    let mut checked = 0;
    for round in 0..2 {
        workload(&store, round)?;
        store.flush()?;
        let expected: Contents = dump(&store)?.into_iter().collect();
        let last_lsn = store.last_lsn();
        vfs.armed.store(true, Ordering::SeqCst);
        let report = store.compact()?;
        vfs.armed.store(false, Ordering::SeqCst);
        assert!(
            report.segments_compacted > 0,
            "round {round}: nothing compacted"
        );
        let now: Contents = dump(&store)?.into_iter().collect();
        assert_eq!(now, expected, "round {round}: compaction changed the data");

        let snapshots = std::mem::take(&mut *vfs.taken.lock().map_err(|_| "poisoned")?);
        assert!(snapshots.len() >= 3, "round {round}: too few crash points");
        // The crash points must include the interesting ones: outputs not yet installed, and
        // a swap marker whose renames and deletions are not finished.
        let has = |snap: &PathBuf, pred: &dyn Fn(&str) -> bool| -> std::io::Result<bool> {
            Ok(std::fs::read_dir(snap)?
                .filter_map(Result::ok)
                .any(|e| pred(&e.file_name().to_string_lossy())))
        };
        let mut pending_outputs = 0;
        let mut markers = 0;
        for snap in &snapshots {
            pending_outputs += usize::from(has(snap, &|n| n.ends_with(".seg.tmp"))?);
            markers += usize::from(has(snap, &|n| {
                n.chars().all(|c| c.is_ascii_uppercase() || c == '_') && n != "LOCK"
            })?);
        }
        assert!(
            pending_outputs > 0 && markers > 0,
            "round {round}: crash points miss pending outputs ({pending_outputs}) or a marker ({markers})"
        );
        for snap in &snapshots {
            for open in 0..2 {
                let crashed = KvStore::open(snap)
                    .map_err(|e| format!("crash point {}: open failed: {e}", snap.display()))?;
                let got: Contents = dump(&crashed)?.into_iter().collect();
                assert_eq!(got, expected, "crash point {}, open {open}", snap.display());
                assert_eq!(
                    crashed.last_lsn(),
                    last_lsn,
                    "crash point {}",
                    snap.display()
                );
                if open == 1 {
                    crashed.compact()?;
                    let again: Contents = dump(&crashed)?.into_iter().collect();
                    assert_eq!(
                        again,
                        expected,
                        "crash point {}: compacting again",
                        snap.display()
                    );
                }
            }
            checked += 1;
        }
    }
    drop(store);
    let store = opts.open(&data)?;
    assert!(checked >= 6);
    assert!(
        store.get("key00")?.is_none(),
        "deleted key resurrected after reopen"
    );
    Ok(())
}
