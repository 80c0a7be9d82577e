//! WAL retention of a replica that is away outlives the replicator that pinned it:
//! `Replicator`'s doc says that on drop "whatever is not delivered stays in the master's WAL
//! for the next replicator", and DESIGN §4 keeps what a replica still needs up to
//! `max_retained_wal_bytes`, like a replication slot. A replica that is down while the
//! replicator is replaced catches up from the WAL, not by a full resync (the drop used to
//! release its retention, and the next compaction took its records).

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

fn builder(c: &Cluster) -> kvstore_replication::ReplicatorBuilder {
    Replicator::builder()
        .replica(c.replicas[0].transport())
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
}

#[test]
fn a_replica_away_across_a_replicator_change_catches_up_from_the_wal() -> TestResult {
    let master_opts = fast()
        .segment_bytes(16 << 10)
        // Far above the few hundred KiB this test writes.
        .max_retained_wal_bytes(256 << 20)
        .auto_compaction(false);
    let c = cluster(1, master_opts)?;
    let repl = builder(&c).attach(&c.master)?;
    for i in 0..200u32 {
        c.master.put(format!("k{i:04}"), format!("first {i}"))?;
    }
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    let acked = repl.status().replicas[0].acked_lsn;

    // The replica goes away; the master writes on.
    c.replicas[0].faults().partition();
    for i in 0..2000u32 {
        c.master
            .put(format!("k{:04}", i % 400), format!("second {i}"))?;
    }
    // While the first replicator runs, the records the replica needs are pinned.
    c.master.compact()?;
    assert!(
        c.master.wal_since(acked).is_ok(),
        "the first replicator keeps the replica's records"
    );

    // The master changes replicators (a restart, a demotion and promotion) while the replica
    // is still away, and compaction runs before the replica is back.
    drop(repl);
    let repl = builder(&c).attach(&c.master)?;
    for i in 0..2000u32 {
        c.master
            .put(format!("k{:04}", i % 400), format!("third {i}"))?;
    }
    c.master.compact()?;
    let still_there = c.master.wal_since(acked).is_ok();

    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    let resyncs = repl.status().replicas[0].resyncs;
    drop(repl);
    assert_all_same(&c)?;
    assert!(
        still_there,
        "the records after LSN {acked} that the away replica needs were compacted away once \
         the replicator that pinned them was dropped (retained bytes far below the limit)"
    );
    assert_eq!(
        resyncs, 0,
        "the replica within the retention limit needed a full resync"
    );
    Ok(())
}
