//! Dropping the Replicator while a Sync writer waits for its quorum: once the workers are
//! gone no ack can come, so the writer gets `QuorumNotReached` at once instead of sleeping
//! out its whole timeout (it slept 20 s before; found in review).

mod common;

use std::time::{Duration, Instant};

use common::{cluster, fast, TestResult};
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn dropping_the_replicator_releases_waiting_sync_writers() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::from_secs(60),
        })
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    c.master.put(b"warm", b"up")?;
    c.replicas[0].faults().partition();
    let store = c.master.clone();
    let writer = std::thread::spawn(move || store.put(b"k", b"v"));
    std::thread::sleep(Duration::from_millis(300));
    let dropped_at = Instant::now();
    drop(repl);
    let result = writer.join().map_err(|_| "writer panicked")?;
    let after_drop = dropped_at.elapsed();
    assert!(
        matches!(
            result,
            Err(kvstore_core::Error::QuorumNotReached {
                acked: 0,
                required: 1,
                ..
            })
        ),
        "{result:?}"
    );
    // The drop itself waits up to the 200 ms shutdown timeout for the workers.
    assert!(
        after_drop < Duration::from_secs(10),
        "the writer stayed blocked {after_drop:?} after the replicator was dropped"
    );
    // The write is durable on the master, as a quorum timeout leaves it.
    assert_eq!(c.master.get(b"k")?, Some(b"v".to_vec()));
    Ok(())
}
