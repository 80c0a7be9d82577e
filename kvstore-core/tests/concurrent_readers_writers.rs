//! Writers, readers (point reads and range scans) and compaction running at once: no update
//! is lost (the final state is every thread's last write per key, before and after reopen),
//! and no read is stale (a reader that saw a write acknowledged then reads that value or a
//! newer one, never an older one, never a torn one).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};
use rand::Rng;

const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 16;
const WRITES_PER_WRITER: u64 = 400;
const READERS: usize = 2;

fn key(t: usize, k: usize) -> String {
    format!("w{t}-k{k:02}")
}

/// The value of write `seq` to key `k` of writer `t`: its origin plus seq-dependent padding,
/// so a reader can tell the sequence number and whether the bytes are whole.
fn value(t: usize, k: usize, seq: u64) -> String {
    format!(
        "w{t}-k{k:02}-seq{seq:06}-{}",
        "z".repeat((seq % 40) as usize)
    )
}

/// The sequence number in a value, after checking the value is exactly one that was written.
fn seq_of(t: usize, k: usize, v: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(v).map_err(|e| e.to_string())?;
    let seq: u64 = s
        .get(10..16)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("malformed value {s:?}"))?;
    if s != value(t, k, seq) {
        return Err(format!("value {s:?} of {} was never written", key(t, k)));
    }
    Ok(seq)
}

struct Shared {
    store: KvStore,
    /// Highest acknowledged sequence number per key (0: none yet).
    acked: Vec<AtomicU64>,
    done: AtomicBool,
}

fn writer(shared: &Shared, t: usize) -> Result<Vec<u64>, String> {
    let mut last = vec![0u64; KEYS_PER_WRITER];
    for seq in 1..=WRITES_PER_WRITER {
        let k = (seq as usize * 7) % KEYS_PER_WRITER;
        let keys: Vec<usize> = if seq % 5 == 0 {
            vec![k, (k + 1) % KEYS_PER_WRITER, (k + 2) % KEYS_PER_WRITER]
        } else {
            vec![k]
        };
        let mut batch = WriteBatch::new();
        for &k in &keys {
            batch.put(key(t, k), value(t, k, seq));
        }
        shared.store.write_batch(batch).map_err(|e| e.to_string())?;
        for &k in &keys {
            last[k] = seq;
            shared.acked[t * KEYS_PER_WRITER + k].fetch_max(seq, Ordering::SeqCst);
        }
    }
    Ok(last)
}

fn reader(shared: &Shared) -> Result<u64, String> {
    let mut rng = rand::rng();
    let mut reads = 0;
    while !shared.done.load(Ordering::SeqCst) {
        let t = rng.random_range(0..WRITERS);
        if rng.random_bool(0.8) {
            let k = rng.random_range(0..KEYS_PER_WRITER);
            let acked = shared.acked[t * KEYS_PER_WRITER + k].load(Ordering::SeqCst);
            let got = shared.store.get(key(t, k)).map_err(|e| e.to_string())?;
            match got {
                None if acked > 0 => return Err(format!("{} vanished", key(t, k))),
                None => {}
                Some(v) => {
                    let seq = seq_of(t, k, &v)?;
                    if seq < acked {
                        return Err(format!("stale read of {}: {seq} < {acked}", key(t, k)));
                    }
                }
            }
        } else {
            let acked: Vec<u64> = (0..KEYS_PER_WRITER)
                .map(|k| shared.acked[t * KEYS_PER_WRITER + k].load(Ordering::SeqCst))
                .collect();
            let prefix = format!("w{t}-");
            let mut items: Vec<(Vec<u8>, Vec<u8>)> = if rng.random_bool(0.5) {
                shared.store.scan_prefix(&prefix).collect::<Result<_, _>>()
            } else {
                let mut v: Vec<_> = shared
                    .store
                    .scan_prefix(&prefix)
                    .rev()
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                v.reverse();
                Ok(v)
            }
            .map_err(|e| e.to_string())?;
            if !items.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err(format!("scan of {prefix} out of order or repeated"));
            }
            for (k, acked) in acked.iter().enumerate() {
                let pos = items
                    .iter()
                    .position(|(key_bytes, _)| key_bytes == key(t, k).as_bytes());
                match pos {
                    None if *acked > 0 => return Err(format!("scan lost {}", key(t, k))),
                    None => {}
                    Some(i) => {
                        let (_, v) = items.swap_remove(i);
                        let seq = seq_of(t, k, &v)?;
                        if seq < *acked {
                            return Err(format!("stale scan of {}: {seq} < {acked}", key(t, k)));
                        }
                    }
                }
            }
            if !items.is_empty() {
                return Err(format!("scan of {prefix} yielded unknown keys"));
            }
        }
        reads += 1;
    }
    Ok(reads)
}

#[test]
fn no_lost_update_and_no_stale_read_under_compaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let opts = Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(8 << 10)
        .auto_compaction(false);
    let shared = Arc::new(Shared {
        store: opts.clone().open(dir.path())?,
        acked: (0..WRITERS * KEYS_PER_WRITER)
            .map(|_| AtomicU64::new(0))
            .collect(),
        done: AtomicBool::new(false),
    });
    let compactions = thread::scope(|scope| -> Result<u64, String> {
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let shared = &shared;
                scope.spawn(move || writer(shared, t))
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|_| scope.spawn(|| reader(&shared)))
            .collect();
        let compactor = scope.spawn(|| -> Result<u64, String> {
            let mut runs = 0;
            while !shared.done.load(Ordering::SeqCst) {
                let report = shared.store.compact().map_err(|e| e.to_string())?;
                runs += u64::from(report.segments_compacted > 0);
                thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(runs)
        });
        let mut finals = Vec::new();
        let mut failure = None;
        for w in writers {
            match w.join() {
                Ok(Ok(last)) => finals.push(last),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some("writer panicked".into()),
            }
        }
        shared.done.store(true, Ordering::SeqCst);
        for r in readers {
            match r.join() {
                Ok(Ok(reads)) if reads > 0 => {}
                Ok(Ok(_)) => failure = Some("a reader never read".into()),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some("reader panicked".into()),
            }
        }
        let runs = compactor.join().map_err(|_| "compactor panicked")??;
        if let Some(e) = failure {
            return Err(e);
        }
        for (t, last) in finals.iter().enumerate() {
            for (k, seq) in last.iter().enumerate() {
                shared.acked[t * KEYS_PER_WRITER + k].store(*seq, Ordering::SeqCst);
            }
        }
        Ok(runs)
    })?;
    assert!(
        compactions > 0,
        "compaction never ran while the writers wrote"
    );
    let final_seqs: Vec<u64> = shared
        .acked
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let check = |store: &KvStore| -> TestResult {
        for t in 0..WRITERS {
            for k in 0..KEYS_PER_WRITER {
                let seq = final_seqs[t * KEYS_PER_WRITER + k];
                assert_eq!(
                    store.get(key(t, k))?,
                    Some(value(t, k, seq).into_bytes()),
                    "lost update of {}",
                    key(t, k)
                );
            }
        }
        assert_eq!(store.len(), WRITERS * KEYS_PER_WRITER);
        Ok(())
    };
    check(&shared.store)?;
    let Shared { store, .. } = Arc::try_unwrap(shared).map_err(|_| "store still shared")?;
    drop(store);
    let store = opts.open(dir.path())?;
    check(&store)
}
