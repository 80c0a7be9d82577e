//! Redis `WAIT` counts only replicas that are connected and acknowledged; a replica that is
//! down does not count. The master's ack board kept a dead replica's last acked LSN counted
//! for ever (a failed session never cleared it), so `WAIT 1 …` kept answering 1 while INFO
//! itself reported the replica as unhealthy.

mod common;

use std::time::Duration;

use common::{eventually, info_field, Cluster, TestResult};

#[test]
fn wait_does_not_count_a_replica_that_is_down() -> TestResult {
    let mut cluster = Cluster::start(1, &["--fsync", "no"], &["--fsync", "no"])?;
    let mut master = cluster.master.client()?;
    master.set(b"k", b"v")?;
    assert_eq!(master.integer(&["WAIT", "1", "5000"])?, 1);

    cluster.replicas[0].kill();
    // The master notices: the replica is reported unhealthy (its probes fail).
    let noticed = eventually(Duration::from_secs(15), || {
        info_field(&mut master, "replication", "replica0")
            .is_ok_and(|r| r.contains("state=unhealthy"))
    });
    let row = info_field(&mut master, "replication", "replica0")?;
    assert!(noticed, "the master never noticed the dead replica: {row}");

    let counted = master.integer(&["WAIT", "1", "300"])?;
    assert_eq!(
        counted,
        0,
        "WAIT counted a replica that is down (INFO: {row}; connected_slaves={})",
        info_field(&mut master, "replication", "connected_slaves")?
    );
    Ok(())
}
