//! A replica that can never finish a full resync (its store refuses a value of the snapshot)
//! becomes unhealthy and is retried with a growing backoff. Each retry starts a fresh snapshot
//! at chunk 0; the replica's taking that first chunk used to count as progress and clear its
//! failures, so it never reached the failure threshold and was resynced from scratch in a
//! loop at the base backoff (2,199 resyncs in 5 s), reported as healthy.

mod common;

use std::time::{Duration, Instant};

use common::{cluster, fast, TestResult};
use kvstore_replication::{InProcessReplica, ReplicaState, Replicator};

#[test]
fn a_replica_that_cannot_finish_a_resync_becomes_unhealthy() -> TestResult {
    let master_opts = fast()
        .segment_bytes(16 << 10)
        .max_retained_wal_bytes(32 << 10)
        .auto_compaction(false);
    let c = cluster(0, master_opts)?;
    // Small keys first (in key order), then one value too large for the replica.
    for round in 0..3u32 {
        for i in 0..400u32 {
            c.master
                .put(format!("a{i:04}"), format!("round {round} value {i}"))?;
        }
        c.master.put(b"zzz-big", vec![round as u8; 5000])?;
        c.master.compact()?;
    }
    assert!(
        c.master.stats().wal_start_lsn > 1,
        "compaction must have removed the start of the WAL"
    );
    let dir = tempfile::tempdir()?;
    let replica = InProcessReplica::open("small", dir.path(), fast().max_value_bytes(1000))?;
    let repl = Replicator::builder()
        .replica(replica.transport())
        .failure_threshold(3)
        .snapshot_chunk_bytes(1024)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(50))
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut unhealthy = false;
    while Instant::now() < deadline {
        if repl.status().replicas[0].state == ReplicaState::Unhealthy {
            unhealthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = repl.status().replicas[0].clone();
    drop(repl);
    assert!(
        unhealthy,
        "a replica that can never install the snapshot stayed {:?} \
         (consecutive_failures {}, sends_failed {}, resyncs {}, last_error {:?})",
        r.state, r.consecutive_failures, r.sends_failed, r.resyncs, r.last_error
    );
    Ok(())
}
