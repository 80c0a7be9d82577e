//! A sync timeout (or a `wait_for` timeout) of `Duration::MAX`, meaning "wait as long as it
//! takes", passes the builder's validation; every wait used to compute `Instant::now() +
//! timeout`, which overflowed and panicked the writer's thread. Now it waits (a century at
//! most) and returns as soon as the replica acknowledges.

mod common;

use std::time::Duration;

use common::{cluster, fast, wait_until, TestResult};
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn a_sync_write_with_an_unbounded_timeout_does_not_panic() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::MAX,
        })
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    let store = c.master.clone();
    let writer = std::thread::spawn(move || store.put(b"k", b"v"));
    assert!(
        wait_until(Duration::from_secs(10), || writer.is_finished()),
        "the write did not return"
    );
    let outcome = writer.join();
    drop(repl);
    match outcome {
        Ok(result) => {
            result?;
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("the sync writer panicked: {msg}");
        }
    }
    Ok(())
}

#[test]
fn wait_for_with_an_unbounded_timeout_does_not_panic() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = std::sync::Arc::new(
        Replicator::builder()
            .replica(c.replicas[0].transport())
            .shutdown_timeout(Duration::from_millis(200))
            .attach(&c.master)?,
    );
    c.master.put(b"k", b"v")?;
    let lsn = c.master.last_lsn();
    let r = repl.clone();
    let waiter = std::thread::spawn(move || r.wait_for(lsn, 1, Duration::MAX));
    assert!(
        wait_until(Duration::from_secs(10), || waiter.is_finished()),
        "WAIT did not return"
    );
    let outcome = waiter.join();
    assert!(outcome.is_ok(), "Replicator::wait_for panicked");
    assert_eq!(outcome.unwrap_or(0), 1);
    Ok(())
}
