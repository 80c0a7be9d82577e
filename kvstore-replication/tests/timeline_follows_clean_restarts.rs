//! The divergence check never refuses a replica that followed its master: not after hundreds
//! of clean master restarts (past the point where the master folds its oldest timeline
//! entries), and not when writes race with the replicator's attach and it is attached again.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use kvstore_replication::{timeline::MAX_TIMELINE_ENTRIES, ReplicaState, Replicator};

#[test]
fn hundreds_of_clean_restarts_keep_the_replica_streaming() -> TestResult {
    let c = cluster(1, fast())?;
    for round in 0..(MAX_TIMELINE_ENTRIES + 20) {
        let repl = Replicator::builder()
            .replica(c.replicas[0].transport())
            .attach(&c.master)?;
        c.master.put(format!("k{round:04}"), b"v")?;
        assert!(
            wait_caught_up(&repl, &c.master, Duration::from_secs(10)),
            "restart {round}: {:?}",
            repl.status().replicas[0]
        );
        assert_ne!(repl.status().replicas[0].state, ReplicaState::Diverged);
    }
    assert_all_same(&c)
}

#[test]
fn writes_racing_with_attach_belong_to_the_attached_incarnation() -> TestResult {
    let c = cluster(1, fast())?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> TestResult {
        let writer = s.spawn(|| -> kvstore_core::Result<()> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.master.put(i.to_be_bytes(), b"v")?;
                i += 1;
            }
            Ok(())
        });
        std::thread::sleep(Duration::from_millis(5));
        let repl = Replicator::builder()
            .replica(c.replicas[0].transport())
            .attach(&c.master)?;
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        writer.join().map_err(|_| "writer panicked")??;
        assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
        Ok(())
    })?;
    // Attached again with no write in between: the replica follows on.
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .attach(&c.master)?;
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(10)),
        "{:?}",
        repl.status().replicas[0]
    );
    assert_eq!(repl.status().replicas[0].state, ReplicaState::Streaming);
    drop(repl);
    assert_all_same(&c)
}
