//! Manual failover: the master dies, `REPLICAOF NO ONE` promotes a replica with a higher
//! epoch, the other replica follows the new master, and the old master, restarted, is
//! refused by both (stale epoch) and cannot change their data.

mod common;

use std::time::Duration;

use common::{converged_digest, eventually, info_field, load, ServerProcess, TestResult};
use kvstore_net::Frame;

#[test]
fn replicaof_no_one_promotes_with_a_higher_epoch() -> TestResult {
    let root = tempfile::tempdir()?;
    let fsync = ["--fsync".to_string(), "no".to_string()];
    let r2 = ServerProcess::start(
        &root.path().join("r2"),
        0,
        &[&["--replica".to_string()][..], &fsync].concat(),
    )?;
    let r1_extra = [
        &[
            "--replica".to_string(),
            "--replicas".to_string(),
            r2.addr.clone(),
        ][..],
        &fsync,
    ]
    .concat();
    let r1 = ServerProcess::start(&root.path().join("r1"), 0, &r1_extra)?;
    let m_extra = [
        &["--replicas".to_string(), format!("{},{}", r1.addr, r2.addr)][..],
        &fsync,
    ]
    .concat();
    let mut master = ServerProcess::start(&root.path().join("m"), 0, &m_extra)?;

    load(&master.addr, "before", 500)?;
    assert_eq!(master.client()?.integer(&["WAIT", "2", "10000"])?, 2);
    master.kill();

    let mut new_master = r1.client()?;
    new_master.expect_ok(&["REPLICAOF", "NO", "ONE"])?;
    assert_eq!(
        info_field(&mut new_master, "replication", "role")?,
        "master"
    );
    assert_eq!(info_field(&mut new_master, "replication", "epoch")?, "2");
    load(&r1.addr, "after", 300)?;
    assert_eq!(new_master.integer(&["WAIT", "1", "10000"])?, 1);

    let mut follower = r2.client()?;
    assert_eq!(info_field(&mut follower, "replication", "epoch")?, "2");
    assert_eq!(
        info_field(&mut follower, "replication", "master_id")?,
        r1.addr
    );
    assert!(
        matches!(follower.command(&["SET", "x", "y"])?, Frame::Error(e) if e.starts_with("READONLY"))
    );
    let digest = converged_digest(&[r1.addr.clone(), r2.addr.clone()], Duration::from_secs(10))?;

    // The old master comes back believing it is master at epoch 1: both nodes refuse it.
    master.restart()?;
    let mut old = master.client()?;
    old.set(b"stale-write", b"x")?;
    assert!(eventually(Duration::from_secs(10), || {
        info_field(&mut old, "replication", "replica1")
            .is_ok_and(|r| r.contains("state=diverged") || r.contains("state=unhealthy"))
    }));
    assert_eq!(follower.get(b"stale-write")?, None);
    assert_eq!(
        converged_digest(&[r1.addr.clone(), r2.addr.clone()], Duration::from_secs(5))?,
        digest
    );
    Ok(())
}
