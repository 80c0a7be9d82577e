//! A master and two replicas as separate processes, asynchronous replication: every kind of
//! write reaches both replicas, INFO replication reports them streaming and caught up, and
//! all three DIGESTs are equal.

mod common;

use std::time::Duration;

use common::{converged_digest, info_field, load, Cluster, TestResult};

#[test]
fn async_writes_reach_both_replicas() -> TestResult {
    let cluster = Cluster::start(2, &["--fsync", "no"], &["--fsync", "no"])?;
    load(&cluster.master.addr, "k", 2_000)?;
    let mut master = cluster.master.client()?;
    master.expect_ok(&["MSET", "batch:a", "1", "batch:b", "2"])?;
    assert_eq!(master.integer(&["DEL", "k1", "k2", "missing"])?, 2);
    assert_eq!(master.integer(&["WAIT", "2", "10000"])?, 2);

    let lsn = info_field(&mut master, "replication", "master_lsn")?;
    let replica0 = info_field(&mut master, "replication", "replica0")?;
    assert!(replica0.contains("state=streaming"), "{replica0}");
    assert!(
        replica0.contains(&format!("acked_lsn={lsn},")),
        "{replica0}"
    );
    assert_eq!(
        info_field(&mut master, "replication", "healthy_replicas")?,
        "2"
    );
    assert_eq!(info_field(&mut master, "replication", "has_quorum")?, "yes");

    let mut replica = cluster.replicas[1].client()?;
    assert_eq!(info_field(&mut replica, "replication", "role")?, "slave");
    assert_eq!(info_field(&mut replica, "replication", "applied_lsn")?, lsn);
    assert_eq!(
        info_field(&mut replica, "replication", "master_link_status")?,
        "up"
    );
    assert_eq!(replica.get(b"batch:b")?, Some(b"2".to_vec()));
    assert_eq!(replica.get(b"k1")?, None);
    assert!(matches!(
        replica.command(&["SET", "x", "y"])?,
        kvstore_net::Frame::Error(e) if e.starts_with("READONLY")
    ));

    let digest = converged_digest(&cluster.addrs(), Duration::from_secs(10))?;
    assert_eq!(master.integer(&["DBSIZE"])?, 2_000);
    assert_eq!(digest.len(), 32);
    Ok(())
}
