//! Duplicated and reordered deliveries: the replica ignores copies, reports gaps instead of
//! skipping, and ends equal to the master.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn duplicated_and_reordered_deliveries_converge() -> TestResult {
    let c = cluster(2, fast())?;
    c.replicas[0].faults().duplicate(0.2).reorder(0.1);
    c.replicas[1]
        .faults()
        .duplicate(0.1)
        .reorder(0.2)
        .delay_uniform(Duration::ZERO, Duration::from_millis(1));
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .window_records(32)
        .attach(&c.master)?;
    for i in 0..3000u32 {
        c.master.put(format!("k{:04}", i % 500), format!("v{i}"))?;
    }
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    for r in &c.replicas {
        let stats = r.endpoint().ok_or("down")?.stats();
        assert!(stats.duplicates > 0, "{}: copies were ignored", r.name());
        assert!(
            stats.gaps > 0,
            "{}: reordering was reported as gaps",
            r.name()
        );
    }
    drop(repl);
    assert_all_same(&c)
}
