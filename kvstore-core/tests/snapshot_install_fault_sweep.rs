//! A snapshot install that fails at every injected write/sync/tear point is
//! all-or-nothing, both in a copy of the directory taken at the failure (a crash) and after
//! the handle is dropped: a reopen shows the old contents with the old LSN, or the whole
//! snapshot with the snapshot's LSN, and the store then accepts the next LSN.

mod common;

use std::sync::Arc;

use kvstore_core::io::FaultyVfs;
use kvstore_core::{KvStore, Op, Options, SyncPolicy, WalRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Contents = Vec<(Vec<u8>, Vec<u8>)>;

fn opts(vfs: Option<FaultyVfs>) -> Options {
    let o = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(8192)
        .auto_compaction(false);
    match vfs {
        Some(v) => o.vfs(Arc::new(v)),
        None => o,
    }
}

const OLD_LSN: u64 = 60;
const SNAP_LSN: u64 = 500;

fn old_contents() -> Contents {
    (0..OLD_LSN)
        .map(|i| (format!("old{i:03}").into_bytes(), vec![b'o'; 150]))
        .collect()
}

fn snap_contents() -> Contents {
    (0..300u32)
        .map(|i| (format!("snap{i:03}").into_bytes(), vec![b's'; 1000]))
        .collect()
}

fn verify(dir: &std::path::Path, what: &str) -> TestResult {
    let store = KvStore::open_with(dir, opts(None))?;
    let got: Contents = store.iter().collect::<Result<_, _>>()?;
    let lsn = store.applied_lsn();
    if got == old_contents() {
        assert_eq!(lsn, OLD_LSN, "{what}: old contents with LSN {lsn}");
    } else if got == snap_contents() {
        assert_eq!(lsn, SNAP_LSN, "{what}: snapshot contents with LSN {lsn}");
    } else {
        return Err(format!("{what}: a mix: {} keys at LSN {lsn}", got.len()).into());
    }
    let next = WalRecord {
        lsn: lsn + 1,
        ops: vec![Op::Put {
            key: b"next".to_vec(),
            value: b"1".to_vec(),
        }],
    };
    assert!(store.apply_replicated(&next)?, "{what}: next LSN refused");
    Ok(())
}

fn run(point: u64, mode: u8) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let store = KvStore::open_with(dir.path(), opts(None))?;
        for (k, v) in old_contents() {
            store.put(k, v)?;
        }
    }
    let vfs = FaultyVfs::new();
    let store = KvStore::open_with(dir.path(), opts(Some(vfs.clone())))?;
    match mode {
        0 => vfs.fail_writes_after(point),
        1 => vfs.tear_writes_after(point),
        _ => vfs.fail_syncs_after(point),
    }
    let result = (|| {
        let mut install = store.begin_snapshot_install(SNAP_LSN)?;
        for (k, v) in snap_contents() {
            install.put(k, v)?;
        }
        install.finish()
    })();
    let crash = tempfile::tempdir()?;
    common::copy_dir(dir.path(), crash.path())?;
    let what = format!("mode {mode} point {point} ({result:?})");
    vfs.heal();
    drop(store);
    verify(crash.path(), &format!("crash copy, {what}"))?;
    verify(dir.path(), &format!("after drop, {what}"))?;
    Ok(result.is_ok())
}

#[test]
fn install_failing_anywhere_is_all_or_nothing() -> TestResult {
    for mode in 0..3u8 {
        for point in 0..40 {
            if run(point, mode)? {
                break;
            }
        }
    }
    Ok(())
}
