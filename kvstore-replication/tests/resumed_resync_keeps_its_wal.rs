//! A full resync interrupted by a network cut resumes the same snapshot (taken at LSN S). While
//! it resumes, the records after S are what the replica needs from the WAL, and they fit well
//! within `max_retained_wal_bytes`: they must stay retained, so that once the snapshot is in,
//! the replica follows the WAL from S instead of needing a second full resync.
//!
//! The worker used to re-register its WAL retention at the replica's old applied LSN on every
//! HELLO, also when it resumed a snapshot: the old LSN pinned all the log the replica no
//! longer needs, which exceeded the limit, so compaction stopped retaining anything for it
//! and removed the records after S too. A resumed snapshot now pins the WAL at its own LSN.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvstore_replication::{Error, InProcessTransport, Replicator, SnapshotChunk, Transport};

#[test]
fn resumed_snapshot_keeps_the_wal_after_its_lsn() -> TestResult {
    let master_opts = fast()
        .segment_bytes(8 << 10)
        .max_retained_wal_bytes(48 << 10)
        .auto_compaction(false);
    let c = cluster(1, master_opts)?;
    c.replicas[0].faults().partition();
    let chunks = Arc::new(AtomicU32::new(0));
    // Cuts the link once, at the third snapshot chunk (before delivering it); when the
    // resumed snapshot sends its next chunk, writes a little more on the master and compacts.
    let (counted, master) = (chunks.clone(), c.master.clone());
    let cut_once = move |chunk: &SnapshotChunk, inner: &mut InProcessTransport| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        if n == 2 {
            inner.close();
            return Err(Error::transport("cut", "network cut mid-snapshot"));
        }
        if n == 3 {
            // The resumed transfer: writes after the snapshot (about 12 KiB of log, well under
            // the 48 KiB limit), then a compaction.
            for i in 0..120u32 {
                master
                    .put(format!("during{i:03}"), vec![b'd'; 80])
                    .map_err(Error::from)?;
            }
            master.delete(b"k0010").map_err(Error::from)?;
            master.compact().map_err(Error::from)?;
        }
        inner.send_snapshot_chunk(chunk)
    };
    let repl = Replicator::builder()
        .replica(OnSnapshotChunk::new(c.replicas[0].transport(), cut_once))
        .snapshot_chunk_bytes(4 << 10)
        // Small: the writes made during the resync overflow it and must come from the WAL.
        .queue_capacity(8)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    // The replica misses records that a compaction then removes from the WAL.
    for round in 0..3u32 {
        for i in 0..300u32 {
            c.master
                .put(format!("k{i:04}"), format!("round {round} value {i:040}"))?;
        }
        c.master.compact()?;
    }
    // More log than the limit, all before the snapshot the resync will take.
    for i in 0..700u32 {
        c.master
            .put(format!("k{:04}", i % 300), format!("late {i:060}"))?;
    }
    assert!(
        c.master.stats().wal_start_lsn > 1,
        "the WAL start was compacted"
    );
    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    assert!(
        chunks.load(Ordering::SeqCst) > 3,
        "the snapshot was cut and resumed"
    );
    let status = repl.status();
    let endpoint = c.replicas[0].endpoint().ok_or("replica down")?;
    drop(repl);
    assert_all_same(&c)?;
    assert_eq!(
        (
            status.replicas[0].resyncs,
            endpoint.stats().snapshots_installed
        ),
        (1, 1),
        "the resumed snapshot needed a second full resync: the WAL after its LSN was not \
         retained while it resumed (status {:?})",
        status.replicas[0]
    );
    Ok(())
}
