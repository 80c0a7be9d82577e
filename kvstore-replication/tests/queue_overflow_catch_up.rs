//! When a replica's live queue overflows, nothing is lost: its worker reads the skipped
//! records from the master's WAL.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn queue_overflow_is_caught_up_from_the_wal() -> TestResult {
    let c = cluster(1, fast())?;
    // A slow link and a tiny queue: the writer outruns the worker by far.
    c.replicas[0].faults().delay(Duration::from_millis(2));
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .queue_capacity(8)
        .window_records(16)
        .attach(&c.master)?;
    for i in 0..5000u32 {
        c.master.put(format!("k{i:05}"), format!("v{i}"))?;
    }
    let overflows = repl.status().replicas[0].queue_overflows;
    assert!(overflows > 0, "the queue must have overflowed");
    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(30)),
        "not caught up: {:?}",
        repl.status()
    );
    let status = repl.status();
    assert_eq!(
        status.replicas[0].resyncs, 0,
        "the WAL was enough, no snapshot"
    );
    assert_eq!(status.replicas[0].lag.records, 0);
    drop(repl);
    assert_all_same(&c)
}
