//! A failed fsync, a failed write or a torn write (injected with `FaultyVfs`, at every point
//! of a run of commits and segment rolls) poisons the store for writes with a clear reason,
//! while reads go on. Reopening with a healthy file system recovers every write acknowledged
//! before the failure, and of the failed write either all of it or nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{dump, TestResult};
use kvstore_core::io::FaultyVfs;
use kvstore_core::{Error, KvStore, Options, SyncPolicy, WriteBatch};

/// Commits before faults are armed, and the most after (a failure comes much sooner).
const WARMUP_WRITES: u32 = 5;
const MAX_WRITES: u32 = 300;
/// Fault points tried per kind: each `n` lets `n` more syncs or writes succeed.
const FAULT_POINTS: [u64; 9] = [0, 1, 2, 3, 5, 8, 13, 21, 34];

#[derive(Debug, Clone, Copy)]
enum Fault {
    Sync,
    Write,
    Tear,
}

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// Write `i`: a batch of three keys, big enough that segments roll every few writes.
fn batch(i: u32) -> (WriteBatch, Contents) {
    let mut batch = WriteBatch::new();
    let mut ops = Contents::new();
    for part in 0..3 {
        let key = format!("w{i:04}-{part}").into_bytes();
        let value = format!("value-{i}-{part}-{}", "f".repeat(300)).into_bytes();
        batch.put(&key, &value);
        ops.insert(key, value);
    }
    (batch, ops)
}

fn run(fault: Fault, n: u64, segment_bytes: u64) -> TestResult {
    let what = format!("{fault:?} after {n}");
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(segment_bytes)
        .auto_compaction(false)
        .vfs(Arc::new(vfs.clone()))
        .open(dir.path())?;
    let mut acked = Contents::new();
    let mut failed: Option<Contents> = None;
    for i in 0..MAX_WRITES {
        if i == WARMUP_WRITES {
            match fault {
                Fault::Sync => vfs.fail_syncs_after(n),
                Fault::Write => vfs.fail_writes_after(n),
                Fault::Tear => vfs.tear_writes_after(n),
            }
        }
        let (b, ops) = batch(i);
        match store.write_batch(b) {
            Ok(_) => acked.extend(ops),
            Err(Error::Poisoned { reason }) => {
                let expected = match fault {
                    Fault::Sync => "injected fsync failure",
                    Fault::Write | Fault::Tear => "injected write failure",
                };
                assert!(
                    reason.contains(expected),
                    "{what}: unclear reason {reason:?}"
                );
                failed = Some(ops);
                break;
            }
            Err(e) => return Err(format!("{what}: expected Poisoned, got {e}").into()),
        }
    }
    let failed = failed.ok_or_else(|| format!("{what}: no write failed"))?;

    // Poisoned for writes, with the same reason every time; reads go on.
    assert!(
        matches!(store.put("more", "x"), Err(Error::Poisoned { .. })),
        "{what}"
    );
    assert!(
        matches!(store.delete("w0000-0"), Err(Error::Poisoned { .. })),
        "{what}"
    );
    assert!(
        matches!(store.flush(), Err(Error::Poisoned { .. })),
        "{what}"
    );
    assert!(
        matches!(store.compact(), Err(Error::Poisoned { .. })),
        "{what}"
    );
    assert!(store.stats().poisoned, "{what}");
    let poisoned = store
        .put("more", "x")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        poisoned.contains("poisoned") && poisoned.contains("injected"),
        "{what}: {poisoned}"
    );
    let visible: Contents = dump(&store)?.into_iter().collect();
    assert_eq!(visible, acked, "{what}: reads after the failure");
    vfs.heal();
    assert!(
        matches!(store.put("more", "x"), Err(Error::Poisoned { .. })),
        "{what}: healed"
    );
    drop(store);

    let store = KvStore::open(dir.path()).map_err(|e| format!("{what}: reopen: {e}"))?;
    let mut recovered: Contents = dump(&store)?.into_iter().collect();
    let failed_present: Vec<bool> = failed.keys().map(|k| recovered.contains_key(k)).collect();
    assert!(
        failed_present.iter().all(|p| *p) || failed_present.iter().all(|p| !*p),
        "{what}: the failed batch came back in part: {failed_present:?}"
    );
    if failed_present.iter().all(|p| *p) {
        for (k, v) in &failed {
            assert_eq!(recovered.remove(k).as_ref(), Some(v), "{what}");
        }
    }
    assert_eq!(recovered, acked, "{what}: acknowledged writes after reopen");
    assert!(
        store.put("after", "reopen").is_ok(),
        "{what}: writes after reopen"
    );
    Ok(())
}

/// Runs every fault point on its own thread, so that a write that never returns fails the
/// test after [`WRITE_TIMEOUT`] instead of hanging it.
fn run_all(segment_bytes: u64) -> TestResult {
    for fault in [Fault::Sync, Fault::Write, Fault::Tear] {
        for n in FAULT_POINTS {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(run(fault, n, segment_bytes).map_err(|e| e.to_string()));
            });
            match rx.recv_timeout(WRITE_TIMEOUT) {
                Ok(result) => result?,
                Err(_) => {
                    return Err(format!(
                        "{fault:?} after {n}: a write did not return within {WRITE_TIMEOUT:?}"
                    )
                    .into())
                }
            }
        }
    }
    Ok(())
}

/// Longest a whole fault point may take.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn io_failures_poison_writes_and_lose_nothing_acknowledged() -> TestResult {
    // Segments large enough that no roll happens: the fault hits a commit's write or sync.
    run_all(64 << 20)
}

#[test]
fn io_failures_during_segment_rolls_poison_writes_too() -> TestResult {
    // 4 KiB segments roll every three writes, so faults also hit the roll's sync and the
    // new segment's header write.
    run_all(4096)
}
