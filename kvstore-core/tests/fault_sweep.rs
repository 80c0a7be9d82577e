//! A sweep of fault points: a write failure, a torn write, a failed file or directory sync,
//! or a power loss (every file cut back to what was synced) at every step of a workload of
//! puts, deletes, batches, segment rolls and compactions; then a reopen, compared with a model
//! of the acknowledged writes (nothing lost, no batch split, nothing resurrected, and the
//! store always opens). Once with small values, once with values large enough that compacted
//! segments get hint files.
mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

#[derive(Debug, Default)]
struct Faults {
    synced: parking_lot::Mutex<std::collections::HashMap<u64, u64>>,
    data: parking_lot::Mutex<Option<std::path::PathBuf>>,
    crash_copy: parking_lot::Mutex<Option<std::path::PathBuf>>,
    writes: AtomicU64,
    syncs: AtomicU64,
    /// 0 none, 1 fail write, 2 tear write, 3 fail sync (file or dir)
    mode: AtomicU8,
    at: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct Seam(Arc<Faults>);

#[derive(Debug)]
struct File {
    inner: Arc<dyn FileIo>,
    f: Arc<Faults>,
    ino: u64,
}

/// Mode 4: at sync number `at`, copies the data directory as a power loss would leave it:
/// every file tracked cut to what was synced of it.
fn crash_point(f: &Faults, n: u64) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if f.mode.load(Ordering::SeqCst) != 4 || n != f.at.load(Ordering::SeqCst) {
        return Ok(());
    }
    let Some(data) = f.data.lock().clone() else {
        return Err(io::Error::other(
            "the seam does not know the data directory",
        ));
    };
    let to = data.with_extension("crash");
    std::fs::create_dir_all(&to)?;
    let synced = f.synced.lock();
    for e in std::fs::read_dir(&data)? {
        let e = e?;
        if e.file_name() == "LOCK" {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let dst = to.join(e.file_name());
        if std::fs::copy(e.path(), &dst).is_err() {
            continue;
        }
        if let Some(len) = synced.get(&meta.ino()) {
            if *len < meta.len() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&dst)?
                    .set_len(*len)?;
            }
        }
    }
    *f.crash_copy.lock() = Some(to);
    Ok(())
}

impl FileIo for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let n = self.f.writes.fetch_add(1, Ordering::SeqCst);
        let mode = self.f.mode.load(Ordering::SeqCst);
        if (mode == 1 || mode == 2) && n >= self.f.at.load(Ordering::SeqCst) {
            if mode == 2 {
                self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            }
            return Err(io::Error::other("injected write failure"));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        let n = self.f.syncs.fetch_add(1, Ordering::SeqCst);
        if self.f.mode.load(Ordering::SeqCst) == 3 && n >= self.f.at.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        crash_point(&self.f, n)?;
        let len = self.inner.size()?;
        self.f.synced.lock().insert(self.ino, len);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        let mut m = self.f.synced.lock();
        let e = m.entry(self.ino).or_insert(len);
        *e = (*e).min(len);
        Ok(())
    }
    fn seal(&self) -> io::Result<()> {
        self.inner.seal()
    }
    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }
}

impl Vfs for Seam {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        use std::os::unix::fs::MetadataExt;
        let inner = OsVfs.open(path, create)?;
        let meta = std::fs::metadata(path)?;
        {
            let mut m = self.0.synced.lock();
            if create {
                m.insert(meta.ino(), meta.len());
            } else {
                m.entry(meta.ino()).or_insert(meta.len());
            }
        }
        Ok(Arc::new(File {
            inner,
            f: self.0.clone(),
            ino: meta.ino(),
        }))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let n = self.0.syncs.fetch_add(1, Ordering::SeqCst);
        if self.0.mode.load(Ordering::SeqCst) == 3 && n >= self.0.at.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected dir fsync failure"));
        }
        crash_point(&self.0, n)?;
        Ok(())
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

enum Step {
    Put(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Compact,
    Reopen,
}

fn workload(big: bool) -> Vec<Step> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut steps = Vec::new();
    for i in 0..150u64 {
        let key = |r: u64| format!("k{r:02}").into_bytes();
        let r = rnd(100);
        if i % 40 == 39 {
            steps.push(Step::Compact);
        } else if i % 57 == 56 {
            steps.push(Step::Reopen);
        } else if r < 55 {
            let len = if big {
                400 + rnd(1500) as usize
            } else {
                10 + rnd(300) as usize
            };
            steps.push(Step::Put(key(rnd(40)), vec![b'a' + (i % 26) as u8; len]));
        } else if r < 80 {
            steps.push(Step::Del(key(rnd(40))));
        } else {
            let n = 1 + rnd(5);
            let ops = (0..n)
                .map(|j| {
                    let k = key(rnd(40));
                    if rnd(3) == 0 {
                        (k, None)
                    } else {
                        (
                            k,
                            Some(vec![
                                b'A' + (j % 26) as u8;
                                if big {
                                    300 + rnd(900) as usize
                                } else {
                                    5 + rnd(200) as usize
                                }
                            ]),
                        )
                    }
                })
                .collect();
            steps.push(Step::Batch(ops));
        }
    }
    steps
}

fn opts(vfs: Arc<dyn Vfs>) -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(4096)
        .auto_compaction(false)
        .vfs(vfs)
}

/// Runs the workload until the first error; returns the model of acknowledged writes and the
/// in-flight step's effect (keys and values after it), if one failed.
fn run(dir: &Path, seam: &Seam, big: bool) -> (Model, Option<Model>, Option<String>) {
    let mut model = Model::new();
    let mut store: Option<KvStore> = None;
    for step in workload(big) {
        if store.is_none() {
            match opts(Arc::new(seam.clone())).open(dir) {
                Ok(s) => store = Some(s),
                Err(e) => return (model, None, Some(format!("open: {e}"))),
            }
        }
        let Some(s) = store.as_ref() else {
            return (model, None, Some("no store".into()));
        };
        let mut after = model.clone();
        let result = match &step {
            Step::Put(k, v) => {
                after.insert(k.clone(), v.clone());
                s.put(k, v).map(|_| ())
            }
            Step::Del(k) => {
                after.remove(k);
                s.delete(k).map(|_| ())
            }
            Step::Batch(ops) => {
                let mut b = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            b.put(k, v);
                            after.insert(k.clone(), v.clone());
                        }
                        None => {
                            b.delete(k);
                            after.remove(k);
                        }
                    }
                }
                s.write_batch(b).map(|_| ())
            }
            Step::Compact => s.compact().map(|_| ()),
            Step::Reopen => {
                store = None;
                Ok(())
            }
        };
        if seam.0.crash_copy.lock().is_some() && seam.0.mode.load(Ordering::SeqCst) == 4 {
            seam.0.mode.store(0, Ordering::SeqCst);
            return (model, Some(after), Some("crash".into()));
        }
        match result {
            Ok(()) => model = after,
            Err(e) => return (model, Some(after), Some(format!("{e}"))),
        }
    }
    (model, None, None)
}

fn dump(store: &KvStore) -> TestResult<Model> {
    Ok(store.iter().collect::<Result<Model, _>>()?)
}

#[test]
fn every_fault_point_with_small_values() -> TestResult {
    sweep(false)
}

#[test]
fn every_fault_point_with_values_that_get_compacted_hints() -> TestResult {
    sweep(true)
}

fn sweep(big: bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut problems = Vec::new();
    for mode in [4u8, 1, 2, 3] {
        let mut at = 0u64;
        loop {
            assert!(Instant::now() < deadline, "time bound");
            let root = tempfile::tempdir()?;
            let data = root.path().join("data");
            std::fs::create_dir_all(&data)?;
            let seam = Seam::default();
            *seam.0.data.lock() = Some(data.clone());
            seam.0.mode.store(mode, Ordering::SeqCst);
            seam.0.at.store(at, Ordering::SeqCst);
            let (model, after, err) = run(&data, &seam, big);
            let check_dir = seam.0.crash_copy.lock().clone().unwrap_or(data.clone());
            if mode == 4 && err.is_some() && check_dir == data {
                problems.push(format!("mode 4 at {at}: no crash copy"));
            }
            let reopened = opts(Arc::new(OsVfs)).open(&check_dir);
            match reopened {
                Err(e) => problems.push(format!(
                    "mode {mode} at {at}: reopen failed: {e} (fault: {err:?})"
                )),
                Ok(store) => {
                    let got = dump(&store)?;
                    let ok = got == model || after.as_ref().is_some_and(|a| *a == got);
                    if !ok {
                        let diff: Vec<_> = got
                            .keys()
                            .chain(model.keys())
                            .filter(|k| got.get(*k) != model.get(*k))
                            .map(|k| String::from_utf8_lossy(k).to_string())
                            .collect();
                        problems.push(format!(
                            "mode {mode} at {at}: contents differ on {diff:?} (fault: {err:?})"
                        ));
                    }
                }
            }
            if let Some(p) = problems.last() {
                if p.starts_with(&format!("mode {mode} at {at}:")) {
                    eprintln!("{p}");
                }
            }
            if err.is_none() {
                break;
            }
            at += if at < 400 { 1 } else { 3 };
        }
        eprintln!(
            "mode {mode}: {at} fault points, {:?} left",
            deadline - Instant::now()
        );
    }
    for p in &problems {
        eprintln!("{p}");
    }
    assert!(problems.is_empty(), "{} problems", problems.len());
    Ok(())
}
