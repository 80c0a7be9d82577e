//! A replica restart ends its replication session. The in-process transport used to keep the
//! worker's session (opened with the old endpoint's HELLO) across `InProcessReplica::stop` /
//! `start`, and the new endpoint, which never saw a HELLO and so never checked the master's
//! timeline, took records whose epoch matched the one on its disk: a replica restarted on a
//! store that followed another master (same epoch, same applied LSN, other records) took this
//! master's records on top of its diverged log. Now the restart breaks the session, as it
//! drops a TCP connection, and an endpoint refuses records until it has accepted a HELLO.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{InProcessReplica, Replicator, Timeline};

#[test]
fn a_restarted_replica_gets_no_records_before_a_new_hello() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        // No idle heartbeat re-HELLO during the test.
        .probe_interval(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    for i in 0..10u32 {
        c.master.put(format!("m1-{i}"), b"a")?;
    }
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));

    // Another master, same epoch (1), whose replica store reaches the same LSN with other
    // records and another timeline.
    let m2_dir = tempfile::tempdir()?;
    let m2 = fast().open(m2_dir.path())?;
    let other_dir = tempfile::tempdir()?;
    let other = InProcessReplica::open("other", other_dir.path(), fast())?;
    {
        let repl2 = Replicator::builder()
            .replica(other.transport())
            .shutdown_timeout(Duration::from_millis(200))
            .attach(&m2)?;
        for i in 0..10u32 {
            m2.put(format!("m2-{i}"), b"b")?;
        }
        assert!(wait_caught_up(&repl2, &m2, Duration::from_secs(10)));
    }
    drop(other.stop());

    // The replica restarts on that store (a restored or swapped disk).
    drop(c.replicas[0].stop());
    let endpoint = reopen(other_dir.path())?;
    let own_timeline = endpoint.timeline();
    // A HELLO from this master would be refused: the timelines part at LSN 1.
    let master_timeline = Timeline::read(c.master_dir.path())?;
    assert_eq!(own_timeline.first_difference(&master_timeline), Some(1));
    c.replicas[0].start(endpoint);
    let replica = c.replicas[0].store().ok_or("replica down")?;
    assert_eq!(replica.applied_lsn(), c.master.last_lsn());

    c.master.put(b"m1-after-restart", b"x")?;
    std::thread::sleep(Duration::from_millis(500));
    let status = repl.status().replicas[0].clone();
    let got = replica.get(b"m1-after-restart")?;
    drop(repl);
    assert_eq!(
        got,
        None,
        "the restarted replica (timeline {:?}) applied the master's record without a HELLO \
         on top of another master's log; status {:?}",
        own_timeline.encode(),
        status.state
    );
    Ok(())
}
