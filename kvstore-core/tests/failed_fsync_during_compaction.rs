//! A group whose fsync fails while a full compaction waits to seal the active segment: the
//! compaction must stop (the store is poisoned), not seal and delete the unpublished record.
//! After reopening, either the record is there or the applied LSN does not claim it, so the
//! master's resend restores it. Found in review.
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Op, Options, SyncPolicy, WalRecord};

#[derive(Debug, Default)]
struct Flags {
    fail_next_sync_slowly: AtomicBool,
}

#[derive(Debug, Clone, Default)]
struct SlowFailVfs(Arc<Flags>);

#[derive(Debug)]
struct F {
    inner: Arc<dyn FileIo>,
    flags: Arc<Flags>,
}

impl FileIo for F {
    fn read_exact_at(&self, b: &mut [u8], o: u64) -> io::Result<()> {
        self.inner.read_exact_at(b, o)
    }
    fn write_all_at(&self, b: &[u8], o: u64) -> io::Result<()> {
        self.inner.write_all_at(b, o)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self
            .flags
            .fail_next_sync_slowly
            .swap(false, Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(400));
            return Err(io::Error::other("injected slow fsync failure"));
        }
        self.inner.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, l: u64) -> io::Result<()> {
        self.inner.set_len(l)
    }
    fn seal(&self) -> io::Result<()> {
        self.inner.seal()
    }
    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }
}

impl Vfs for SlowFailVfs {
    fn open(&self, p: &Path, c: bool) -> io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(F {
            inner: OsVfs.open(p, c)?,
            flags: self.0.clone(),
        }))
    }
    fn sync_dir(&self, d: &Path) -> io::Result<()> {
        OsVfs.sync_dir(d)
    }
}

fn rec(lsn: u64) -> WalRecord {
    WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: format!("k{lsn}").into_bytes(),
            value: b"v".to_vec(),
        }],
    }
}

#[test]
fn a_failed_fsync_during_full_compaction_never_loses_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = SlowFailVfs::default();
    {
        let replica = Options::new()
            .sync_policy(SyncPolicy::Always)
            .auto_compaction(false)
            .vfs(Arc::new(vfs.clone()))
            .open(dir.path())
            .unwrap();
        for lsn in 1..=5 {
            assert!(replica.apply_replicated(&rec(lsn)).unwrap());
        }
        vfs.0.fail_next_sync_slowly.store(true, Ordering::SeqCst);
        let r2 = replica.clone();
        let applier = std::thread::spawn(move || r2.apply_replicated(&rec(6)));
        std::thread::sleep(Duration::from_millis(100));
        let compacted = replica.compact();
        let applied = applier.join().unwrap();
        eprintln!("apply(6) = {applied:?}; compact() = {compacted:?}");
        assert!(applied.is_err(), "record 6 must have failed");
        assert!(
            compacted.is_err(),
            "compaction must stop on a poisoned store"
        );
    }
    let replica = Options::new()
        .sync_policy(SyncPolicy::Always)
        .open(dir.path())
        .unwrap();
    eprintln!(
        "after reopen: applied_lsn = {}, k6 = {:?}",
        replica.applied_lsn(),
        replica.get("k6").unwrap()
    );
    // The master resends record 6 (never acknowledged by this replica).
    let resent = replica.apply_replicated(&rec(6)).unwrap();
    assert!(
        replica.get("k6").unwrap().is_some(),
        "record 6 lost: applied_lsn={} resend returned {resent}",
        replica.applied_lsn()
    );
}
