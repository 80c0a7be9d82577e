//! Power losses across the life of a store, each ending in a loss that keeps a random
//! subset of the pages written since the last sync: several lives under `Never` and
//! `EveryMillis` (each opened on what the previous left after a power loss or a plain process
//! crash) with compaction rolling segments; a replica applying a master's records after a
//! snapshot install that lowers its LSNs; concurrent writers, flushes and rolls; `Always`
//! groups spanning rolls with syncs failing midway. The store must open (never `Corrupt`)
//! with a prefix of its log that covers everything synced. Written in review of the records'
//! synced gap.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{PageLossVfs, TestResult};
use kvstore_core::{KvStore, Lsn, Options, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(policy: SyncPolicy, vfs: Arc<PageLossVfs>) -> Options {
    Options::new()
        .sync_policy(policy)
        .segment_bytes(32 << 10)
        .auto_compaction(false)
        .vfs(vfs)
}

fn contents(store: &KvStore) -> TestResult<Model> {
    Ok(store.iter().collect::<Result<BTreeMap<_, _>, _>>()?)
}

/// (lsn, key, value or delete)
type Log = Vec<(Lsn, Vec<u8>, Option<Vec<u8>>)>;

fn model_at(base: &Model, log: &Log, lsn: Lsn) -> Model {
    let mut m = base.clone();
    for (l, k, v) in log {
        if *l > lsn {
            break;
        }
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m
}

fn run(policy: SyncPolicy, seed: u64, lives: usize) -> TestResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dir = tempfile::tempdir()?;
    let mut base: Model = BTreeMap::new();
    for life in 0..lives {
        let vfs = Arc::new(PageLossVfs::default());
        let store = options(policy, vfs.clone())
            .open(dir.path())
            .map_err(|e| format!("seed {seed} life {life}: open failed: {e}"))?;
        let start = store.last_lsn();
        let found = contents(&store)?;
        assert_eq!(found, base, "seed {seed} life {life}: contents at open");
        let mut log: Log = Vec::new();
        let mut synced = start;
        for step in 0..rng.random_range(20..120) {
            let k = format!("k{:02}", rng.random_range(0..30)).into_bytes();
            match rng.random_range(0..20) {
                0 => {
                    store.flush()?;
                    synced = store.last_lsn();
                }
                1 if life % 2 == 1 => {
                    store.compact()?;
                }
                2..=3 => {
                    if store.delete(&k)? {
                        log.push((store.last_lsn(), k, None));
                    }
                }
                _ => {
                    let mut v = format!("{life}:{step}:").into_bytes();
                    v.resize(rng.random_range(10..3000), b'x');
                    let lsn = store.put(&k, &v)?;
                    log.push((lsn, k, Some(v)));
                }
            }
        }
        let next = tempfile::tempdir()?;
        let power_loss = rng.random_range(0..3) != 0;
        vfs.power_loss_copy(dir.path(), next.path(), |_, _| {
            power_loss && rng.random_range(0..2) == 0
        })?;
        let last = store.last_lsn();
        std::mem::forget(store); // a crash: no close, no final sync
        let reopened = Options::new()
            .sync_policy(policy)
            .segment_bytes(32 << 10)
            .auto_compaction(false)
            .open(next.path())
            .map_err(|e| {
                format!("seed {seed} life {life} (power loss {power_loss}): reopen failed: {e}")
            })?;
        let got = reopened.last_lsn();
        assert!(
            got >= synced && got <= last,
            "seed {seed} life {life}: synced {synced}, last {last}, recovered {got}"
        );
        if !power_loss {
            assert_eq!(
                got, last,
                "seed {seed} life {life}: a process crash lost writes"
            );
        }
        let expect = model_at(&base, &log, got);
        assert_eq!(
            contents(&reopened)?,
            expect,
            "seed {seed} life {life}: not a prefix"
        );
        base = expect;
        drop(reopened);
        let _ = std::fs::remove_file(next.path().join(kvstore_core::LOCK_FILE_NAME));
        dir = next;
    }
    Ok(())
}

#[test]
fn several_lives_never() -> TestResult {
    for seed in 0..25 {
        run(SyncPolicy::Never, seed, 6)?;
    }
    Ok(())
}

#[test]
fn several_lives_every_millis() -> TestResult {
    for seed in 100..115 {
        run(SyncPolicy::EveryMillis(1), seed, 5)?;
    }
    Ok(())
}

/// A replica (Never) applies the master's records in windows, syncs now and then, loses
/// power; then it opens with a prefix of the master's log, and after a snapshot install that
/// lowers its LSNs, again.
#[test]
fn replica_power_loss_and_install() -> TestResult {
    for seed in 0..20u64 {
        let mut rng = StdRng::seed_from_u64(500 + seed);
        let mdir = tempfile::tempdir()?;
        let master = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(32 << 10)
            .auto_compaction(false)
            .open(mdir.path())?;
        for i in 0..300u32 {
            let mut v = format!("{i}:").into_bytes();
            v.resize(rng.random_range(10..2000), b'm');
            master.put(format!("k{:02}", rng.random_range(0..40)), v)?;
        }
        let rdir = tempfile::tempdir()?;
        let vfs = Arc::new(PageLossVfs::default());
        let replica = options(SyncPolicy::Never, vfs.clone()).open(rdir.path())?;
        // A replica that had its own, higher, log first: the install lowers its LSNs.
        for i in 0..400u32 {
            replica.put(format!("old{i}"), vec![b'o'; 500])?;
        }
        let snap_at = rng.random_range(50..150);
        // The master's state at snap_at, from its own log.
        let mut snapshot: Model = BTreeMap::new();
        for r in master.wal_since(0)? {
            let r = r?;
            if r.lsn > snap_at {
                break;
            }
            for op in r.ops {
                match op {
                    kvstore_core::Op::Put { key, value } => {
                        snapshot.insert(key, value);
                    }
                    kvstore_core::Op::Delete { key } => {
                        snapshot.remove(&key);
                    }
                }
            }
        }
        if rng.random_range(0..2) == 0 {
            replica.flush()?;
        }
        let mut install = replica.begin_snapshot_install(snap_at)?;
        for (k, v) in &snapshot {
            install.put(k, v)?;
        }
        install.finish()?;
        let mut synced = snap_at;
        let mut iter = master.wal_since(snap_at)?;
        loop {
            let mut window = Vec::new();
            for _ in 0..rng.random_range(1..8) {
                match iter.next_encoded() {
                    Some(r) => window.push(r?),
                    None => break,
                }
            }
            if window.is_empty() {
                break;
            }
            replica.apply_replicated_batch(&window)?;
            if rng.random_range(0..6) == 0 {
                replica.flush()?;
                synced = replica.last_lsn();
            }
        }
        let after = tempfile::tempdir()?;
        vfs.power_loss_copy(rdir.path(), after.path(), |_, _| {
            rng.random_range(0..2) == 0
        })?;
        drop(replica);
        let reopened = Options::new()
            .segment_bytes(32 << 10)
            .open(after.path())
            .map_err(|e| format!("seed {seed}: replica did not open: {e}"))?;
        let got = reopened.last_lsn();
        assert!(got >= synced, "seed {seed}: synced {synced} got {got}");
        // Its contents are the master's at `got`.
        let mut expect = snapshot.clone();
        for r in master.wal_since(snap_at)? {
            let r = r?;
            if r.lsn > got {
                break;
            }
            for op in r.ops {
                match op {
                    kvstore_core::Op::Put { key, value } => {
                        expect.insert(key, value);
                    }
                    kvstore_core::Op::Delete { key } => {
                        expect.remove(&key);
                    }
                }
            }
        }
        assert_eq!(contents(&reopened)?, expect, "seed {seed}");
    }
    Ok(())
}

/// Writers on several threads, a thread calling flush() all along, and compaction rolling the
/// active segment meanwhile; then a power loss. The store must open with at least what the
/// last completed flush covered, and no Corrupt.
#[test]
fn concurrent_writers_flushes_and_rolls_then_power_loss() -> TestResult {
    for seed in 0..12u64 {
        let dir = tempfile::tempdir()?;
        let vfs = Arc::new(PageLossVfs::default());
        let store = options(SyncPolicy::Never, vfs.clone()).open(dir.path())?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flushed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut handles = Vec::new();
        for t in 0..3u64 {
            let store = store.clone();
            handles.push(std::thread::spawn(move || -> kvstore_core::Result<()> {
                let mut rng = StdRng::seed_from_u64(seed * 10 + t);
                for i in 0..400u32 {
                    let v = vec![b'a' + t as u8; rng.random_range(10..1500)];
                    store.put(format!("t{t}k{}", i % 50), v)?;
                }
                Ok(())
            }));
        }
        {
            let store = store.clone();
            let stop = stop.clone();
            let flushed = flushed.clone();
            handles.push(std::thread::spawn(move || -> kvstore_core::Result<()> {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let before = store.last_lsn();
                    store.flush()?;
                    flushed.fetch_max(before, std::sync::atomic::Ordering::SeqCst);
                    n += 1;
                    if n.is_multiple_of(7) {
                        store.compact()?;
                    }
                }
                Ok(())
            }));
        }
        let flusher = handles.pop().ok_or("no flusher")?;
        for h in handles {
            h.join().map_err(|_| "writer panicked")??;
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        flusher.join().map_err(|_| "flusher panicked")??;
        let synced = flushed.load(std::sync::atomic::Ordering::SeqCst);
        // A few more unsynced writes to tear.
        for i in 0..30u32 {
            store.put(format!("tail{i}"), vec![b'z'; 900])?;
        }
        let after = tempfile::tempdir()?;
        let mut rng = StdRng::seed_from_u64(seed);
        vfs.power_loss_copy(dir.path(), after.path(), |_, _| rng.random_range(0..2) == 0)?;
        drop(store);
        let reopened = Options::new()
            .open(after.path())
            .map_err(|e| format!("seed {seed}: did not open: {e}"))?;
        assert!(reopened.last_lsn() >= synced, "seed {seed}");
    }
    Ok(())
}

/// Always, writers on several threads with groups spanning rolls (small segments); syncs
/// start failing midway; then a power loss. Every acknowledged write survives, no Corrupt.
#[test]
fn always_groups_across_rolls_with_failing_syncs() -> TestResult {
    for seed in 0..12u64 {
        let dir = tempfile::tempdir()?;
        let vfs = Arc::new(PageLossVfs::default());
        let store = Options::new()
            .sync_policy(SyncPolicy::Always)
            .segment_bytes(8 << 10)
            .auto_compaction(false)
            .vfs(vfs.clone())
            .open(dir.path())?;
        let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for t in 0..3u64 {
            let store = store.clone();
            let acked = acked.clone();
            let vfs = vfs.clone();
            handles.push(std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed * 10 + t);
                for i in 0..150u32 {
                    if t == 0 && i == 100 + seed as u32 {
                        vfs.fail_syncs();
                    }
                    let mut batches = Vec::new();
                    for j in 0..rng.random_range(1..4) {
                        let mut b = kvstore_core::WriteBatch::new();
                        b.put(
                            format!("t{t}i{i}j{j}"),
                            vec![b'v'; rng.random_range(10..1500)],
                        );
                        batches.push(b);
                    }
                    match store.write_batches(batches) {
                        Ok(rs) => {
                            for r in rs.into_iter().flatten() {
                                acked.lock().unwrap().push(r);
                            }
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        for h in handles {
            h.join().map_err(|_| "writer panicked")?;
        }
        let after = tempfile::tempdir()?;
        let mut rng = StdRng::seed_from_u64(seed);
        vfs.power_loss_copy(dir.path(), after.path(), |_, _| rng.random_range(0..2) == 0)?;
        drop(store);
        let reopened = Options::new()
            .open(after.path())
            .map_err(|e| format!("seed {seed}: did not open: {e}"))?;
        let max_acked = acked.lock().unwrap().iter().copied().max().unwrap_or(0);
        assert!(reopened.last_lsn() >= max_acked, "seed {seed}");
    }
    Ok(())
}
