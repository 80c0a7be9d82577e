//! An empty (or lagging) master must not wipe a replica that is ahead of it: the replica is
//! reported diverged and left untouched until an operator forces a resync. A replica refuses
//! a master of a lower epoch.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{epoch, ReplicaState, Replicator};

#[test]
fn empty_master_reports_diverged_and_leaves_the_replica_untouched() -> TestResult {
    let c = cluster(1, fast())?;
    {
        let repl = Replicator::builder()
            .replica(c.replicas[0].transport())
            .attach(&c.master)?;
        for i in 0..200u32 {
            c.master.put(format!("k{i:03}"), b"v")?;
        }
        assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    }
    let replica_store = c.replicas[0].store().ok_or("down")?;
    let replica_lsn = replica_store.applied_lsn();
    // The master "restarts empty": a fresh directory, same epoch.
    let empty_dir = tempfile::tempdir()?;
    let empty = fast().open(empty_dir.path())?;
    empty.put(b"only", b"one")?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .probe_interval(Duration::from_millis(20))
        .attach(&empty)?;
    assert!(wait_until(Duration::from_secs(5), || repl
        .status()
        .replicas[0]
        .state
        == ReplicaState::Diverged));
    empty.put(b"more", b"two")?;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        replica_store.applied_lsn(),
        replica_lsn,
        "replica untouched"
    );
    assert_eq!(replica_store.get(b"only")?, None);
    assert_eq!(replica_store.len(), 200);
    // The operator decides: replace the replica with the new master's contents.
    assert!(repl.force_resync("r0"));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = repl.status();
            s.replicas[0].state == ReplicaState::Streaming
                && s.replicas[0].acked_lsn == empty.last_lsn()
        }),
        "forced resync: {:?}",
        repl.status()
    );
    drop(repl);
    assert_same(&empty, &replica_store, "r0")
}

#[test]
fn a_replica_refuses_a_master_of_a_lower_epoch() -> TestResult {
    let c = cluster(1, fast())?;
    {
        let repl = Replicator::builder()
            .replica(c.replicas[0].transport())
            .epoch(3)
            .attach(&c.master)?;
        c.master.put(b"a", b"1")?;
        assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    }
    let endpoint = c.replicas[0].endpoint().ok_or("down")?;
    assert_eq!(endpoint.epoch(), 3);
    assert_eq!(
        epoch::read_epoch(c.replica_dirs[0].path())?,
        Some(3),
        "stored durably"
    );
    // An old master of epoch 2 with more records shows up.
    let old_dir = tempfile::tempdir()?;
    let old = fast().open(old_dir.path())?;
    for i in 0..10u32 {
        old.put(format!("old{i}"), b"x")?;
    }
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .epoch(2)
        .probe_interval(Duration::from_millis(20))
        .attach(&old)?;
    assert!(wait_until(Duration::from_secs(5), || repl
        .status()
        .replicas[0]
        .state
        == ReplicaState::Diverged));
    let error = repl.status().replicas[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(error.contains("STALEEPOCH"), "{error}");
    drop(repl);
    let replica_store = endpoint.store();
    assert_eq!(
        replica_store.get(b"old0")?,
        None,
        "nothing from the stale master"
    );
    assert_same(&c.master, replica_store, "r0")
}
