//! A replica whose records were compacted out of the master's WAL is resynced from a
//! chunked snapshot (values larger than a chunk are split), then follows the WAL again.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn replica_behind_a_compacted_wal_is_resynced_from_a_snapshot() -> TestResult {
    let master_opts = fast()
        .segment_bytes(16 << 10)
        .max_retained_wal_bytes(32 << 10)
        .auto_compaction(false);
    let c = cluster(1, master_opts)?;
    c.replicas[0].faults().partition();
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .snapshot_chunk_bytes(8 << 10)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    for round in 0..6u32 {
        for i in 0..400u32 {
            c.master
                .put(format!("k{:04}", i), format!("round {round} value {i}"))?;
        }
        c.master.delete(format!("k{:04}", round))?;
        // Larger than a chunk: travels in pieces. Overwritten each round so that its
        // segment holds dead bytes and is compacted too.
        c.master.put(b"big", vec![round as u8; 50_000])?;
        c.master.compact()?;
    }
    let oldest = c.master.stats().wal_start_lsn;
    assert!(
        oldest > 1,
        "compaction must have removed the start of the WAL"
    );
    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    // Writes after the resync stream through the WAL again.
    for i in 0..100u32 {
        c.master.put(format!("after{i:03}"), b"y")?;
    }
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    let status = repl.status();
    assert_eq!(status.replicas[0].resyncs, 1, "exactly one resync, no loop");
    let endpoint = c.replicas[0].endpoint().ok_or("replica down")?;
    assert_eq!(endpoint.stats().snapshots_installed, 1);
    drop(repl);
    assert_all_same(&c)
}
