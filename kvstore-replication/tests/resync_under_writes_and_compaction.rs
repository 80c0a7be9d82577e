//! Full resyncs and WAL catch-ups while writes, deletes and compactions go on, with a
//! replica restarted in the middle; every replica must end equal to the master.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn resync_while_writes_and_compactions_continue() -> TestResult {
    let master_opts = fast()
        .segment_bytes(8 << 10)
        .max_retained_wal_bytes(16 << 10)
        .auto_compaction(false);
    let c = cluster(2, master_opts)?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .mode(ReplicationMode::Async)
        .snapshot_chunk_bytes(2 << 10)
        .queue_capacity(64)
        .window_records(16)
        .ack_timeout(Duration::from_millis(200))
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = c.master.clone();
        let stop = stop.clone();
        std::thread::spawn(move || -> kvstore_core::Result<u64> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{:04}", i % 500);
                if i.is_multiple_of(7) {
                    store.delete(&key)?;
                } else {
                    store.put(&key, format!("value {i} {}", "x".repeat((i % 50) as usize)))?;
                }
                if i.is_multiple_of(300) {
                    store.compact()?;
                }
                i += 1;
            }
            Ok(i)
        })
    };
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        c.replicas[round % 2].faults().partition();
        std::thread::sleep(Duration::from_millis(200));
        c.replicas[round % 2].faults().heal();
        if round == 3 {
            let ep = c.replicas[1].stop().ok_or("down")?;
            drop(ep);
            std::thread::sleep(Duration::from_millis(50));
            let reopened = reopen(c.replica_dirs[1].path())?;
            c.replicas[1].start(reopened);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let n = writer.join().map_err(|_| "writer panicked")??;
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(30)),
        "not caught up after {n} writes: {:?}",
        repl.status()
    );
    let status = repl.status();
    drop(repl);
    eprintln!("writes {n}, status {status:?}");
    assert_all_same(&c)
}
