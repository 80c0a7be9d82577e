//! An operator's forced resync of a diverged replica is not forgotten when the forced session
//! fails on the way (a lost HELLO, a lost snapshot chunk): the worker keeps forcing until the
//! snapshot is installed, and then the replica equals the master.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::KvStore;
use kvstore_replication::{ReplicaState, Replicator};

/// A replica holding 200 records of an earlier master, and a fresh master with 3 records,
/// attached to it: the replica is diverged.
fn diverged(
    c: &Cluster,
) -> Result<(Replicator, KvStore, tempfile::TempDir), Box<dyn std::error::Error>> {
    {
        let repl = Replicator::builder()
            .replica(c.replicas[0].transport())
            .attach(&c.master)?;
        for i in 0..200u32 {
            c.master.put(format!("k{i:03}"), b"v")?;
        }
        assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    }
    let dir = tempfile::tempdir()?;
    let fresh = fast().open(dir.path())?;
    for i in 0..3u32 {
        fresh.put(format!("new{i}"), b"n")?;
    }
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .ack_timeout(Duration::from_millis(200))
        .attach(&fresh)?;
    assert!(wait_until(Duration::from_secs(5), || repl
        .status()
        .replicas[0]
        .state
        == ReplicaState::Diverged));
    Ok((repl, fresh, dir))
}

fn assert_forced_resync_completes(c: &Cluster, repl: &Replicator, fresh: &KvStore) -> TestResult {
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = repl.status();
            s.replicas[0].state == ReplicaState::Streaming
                && s.replicas[0].acked_lsn == fresh.last_lsn()
        }),
        "the forced resync was given up: {:?}",
        repl.status()
    );
    let store = c.replicas[0].store().ok_or("down")?;
    assert_same(fresh, &store, "r0")
}

#[test]
fn a_failed_forced_hello_is_retried_as_forced() -> TestResult {
    let c = cluster(1, fast())?;
    let (repl, fresh, _dir) = diverged(&c)?;
    // The forced HELLO is the next call on the link: it fails once.
    c.replicas[0].faults().fail_next(1);
    assert!(repl.force_resync("r0"));
    assert_forced_resync_completes(&c, &repl, &fresh)?;
    drop(repl);
    Ok(())
}

#[test]
fn a_lost_snapshot_chunk_does_not_end_the_forced_resync() -> TestResult {
    let c = cluster(1, fast())?;
    let (repl, fresh, _dir) = diverged(&c)?;
    // Every snapshot chunk is lost until the worker noticed one failure.
    c.replicas[0].faults().drop_messages(1.0);
    assert!(repl.force_resync("r0"));
    assert!(wait_until(Duration::from_secs(5), || repl
        .status()
        .replicas[0]
        .sends_failed
        > 0));
    c.replicas[0].faults().heal();
    assert_forced_resync_completes(&c, &repl, &fresh)?;
    drop(repl);
    Ok(())
}
