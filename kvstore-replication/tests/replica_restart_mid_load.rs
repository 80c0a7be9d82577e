//! A replica dropped mid-load and reopened from its directory catches up from its applied
//! LSN (which survived the restart) and ends equal to the master.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn replica_restarted_mid_load_catches_up_from_its_applied_lsn() -> TestResult {
    let c = cluster(2, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .ack_timeout(Duration::from_millis(200))
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .probe_interval(Duration::from_millis(20))
        .attach(&c.master)?;
    for i in 0..3000u32 {
        c.master.put(format!("k{:05}", i % 1200), format!("v{i}"))?;
        if i == 1000 {
            let endpoint = c.replicas[1].stop().ok_or("replica already down")?;
            let applied_before = endpoint.applied_lsn();
            drop(endpoint);
            let reopened = reopen(c.replica_dirs[1].path())?;
            assert!(
                reopened.applied_lsn() >= applied_before.min(1),
                "applied LSN survives"
            );
            // Keep it down for a while so the master moves on without it.
            for j in 0..500u32 {
                c.master.put(format!("down{j:04}"), b"x")?;
            }
            // Stay down until the worker has tried and failed: a worker that lets its window
            // fill (async batching) or is not scheduled in time could otherwise miss a short
            // outage, and the test is about recovering from one that was noticed.
            assert!(
                wait_until(Duration::from_secs(10), || repl.status().replicas[1]
                    .sends_failed
                    > 0),
                "the outage was noticed: {:?}",
                repl.status()
            );
            c.replicas[1].start(reopened);
        }
    }
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    assert!(
        repl.status().replicas[1].sends_failed > 0,
        "the outage was noticed"
    );
    drop(repl);
    assert_all_same(&c)
}
