//! Records in a replica's live queue that the replica turns out to hold already (applied in an
//! earlier session whose acks were lost, or sent from the WAL or a snapshot meanwhile) are
//! discarded and give their room back at once: the queue neither reports them as waiting nor
//! refuses the next commits because of them.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{Hello, Replicator, Timeline};

#[test]
fn records_the_replica_already_has_do_not_keep_its_queue_full() -> TestResult {
    let c = cluster(1, fast())?;
    let replica = &c.replicas[0];
    replica.faults().partition();
    let repl = Replicator::builder()
        .replica(replica.transport())
        .queue_capacity(4)
        // The replica stays "connecting" while partitioned, so the hook keeps queueing for it.
        .failure_threshold(1_000)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        // An idle worker re-checks its replica only this often: longer than the test.
        .probe_interval(Duration::from_secs(60))
        .attach(&c.master)?;
    for i in 0..4u32 {
        c.master.put(format!("k{i}"), format!("v{i}"))?;
    }
    // The replica gets these four by another route while the link is down, as when a session
    // (opened with this master's HELLO) applied them and lost their acks.
    let endpoint = replica.endpoint().ok_or("replica is down")?;
    endpoint.hello(&Hello {
        timeline: Timeline::read(c.master.path())?,
        ..hello(repl.epoch(), c.master.last_lsn())
    })?;
    let store = endpoint.store();
    for record in c.master.wal_since(0)? {
        store.apply_replicated(&record?)?;
    }
    replica.faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(5)),
        "not caught up: {:?}",
        repl.status()
    );
    assert!(
        wait_until(Duration::from_secs(2), || repl.status().queue_depth == 0),
        "records the replica has are still counted as queued: {:?}",
        repl.status()
    );
    let lsn = c.master.put("k4", "v4")?;
    assert_eq!(
        repl.wait_for(lsn, 1, Duration::from_secs(5)),
        1,
        "the next commit must reach the replica: {:?}",
        repl.status()
    );
    assert_eq!(repl.status().replicas[0].queue_overflows, 0);
    drop(repl);
    assert_all_same(&c)
}
