//! A replica killed (its endpoint dropped and its directory reopened) after it installed the
//! last snapshot chunk but before the master saw the ack; meanwhile keys the snapshot holds
//! are deleted and overwritten on the master. The replica must end equal to the master (the
//! deletes after the snapshot's LSN reach it), with no resync loop.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvstore_replication::{Error, InProcessTransport, Replicator, SnapshotChunk, Transport};

#[test]
fn replica_killed_between_last_chunk_and_ack_ends_equal() -> TestResult {
    let master_opts = fast()
        .segment_bytes(8 << 10)
        .max_retained_wal_bytes(64 << 10)
        .auto_compaction(false);
    let c = cluster(1, master_opts)?;
    c.replicas[0].faults().partition();
    let killed = Arc::new(AtomicBool::new(false));
    let (replica, dir) = (
        c.replicas[0].clone(),
        c.replica_dirs[0].path().to_path_buf(),
    );
    let (master, killing) = (c.master.clone(), killed.clone());
    let mut chunks = 0;
    let kill_at_last = move |chunk: &SnapshotChunk, inner: &mut InProcessTransport| {
        chunks += 1;
        if chunks == 2 {
            // After the snapshot's LSN: deletes and overwrites of keys it holds.
            for i in 0..100u32 {
                master.delete(format!("k{i:04}")).map_err(Error::from)?;
                master
                    .put(format!("k{:04}", 100 + i), b"after")
                    .map_err(Error::from)?;
            }
        }
        let ack = inner.send_snapshot_chunk(chunk)?;
        if chunk.last && !killing.swap(true, Ordering::SeqCst) {
            assert!(ack.finished);
            let endpoint = replica
                .stop()
                .ok_or_else(|| Error::transport("kill", "the replica was already down"))?;
            drop(endpoint);
            let reopened = reopen(&dir)
                .map_err(|e| Error::transport("kill", format!("reopening the replica: {e}")))?;
            replica.start(reopened);
            return Err(Error::transport("kill", "replica killed before its ack"));
        }
        Ok(ack)
    };
    let repl = Replicator::builder()
        .replica(OnSnapshotChunk::new(
            c.replicas[0].transport(),
            kill_at_last,
        ))
        .snapshot_chunk_bytes(4 << 10)
        .queue_capacity(8)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    for round in 0..3u32 {
        for i in 0..300u32 {
            c.master
                .put(format!("k{i:04}"), format!("round {round} value {i:040}"))?;
        }
        c.master.compact()?;
    }
    c.replicas[0].faults().heal();
    assert!(
        wait_until(Duration::from_secs(20), || killed.load(Ordering::SeqCst)
            && repl.status().replicas[0].acked_lsn >= c.master.last_lsn()),
        "not caught up: {:?}",
        repl.status()
    );
    let status = repl.status();
    drop(repl);
    assert_all_same(&c)?;
    assert_eq!(
        status.replicas[0].resyncs, 1,
        "no second resync: {status:?}"
    );
    Ok(())
}
