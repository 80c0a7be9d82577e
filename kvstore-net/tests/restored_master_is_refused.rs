//! A master restarted from an older copy of its data directory (as after losing the tail of
//! its log with `--fsync everysec` in a power cut) writes new records under LSNs a replica
//! already holds other records for. Once it has written past the replica's applied LSN, LSNs
//! alone would let the replica follow it and stay different for ever; the timelines in
//! `REPLICATE HELLO` make the replica refuse (the master reports it diverged) with its data
//! untouched. The operator empties the replica and restarts it: the master, probing the
//! diverged replica, finds it accepted and resyncs it, and both end with one DIGEST.

mod common;

use std::time::Duration;

use common::{converged_digest, eventually, info_field, ServerProcess, TestResult};

fn set_each(addr: &str, prefix: &str, range: std::ops::Range<u32>, value: &[u8]) -> TestResult {
    let mut client = kvstore_net::Client::connect(addr)?;
    for i in range {
        client.set(format!("{prefix}{i:03}").as_bytes(), value)?;
    }
    Ok(())
}

#[test]
fn a_master_restored_without_its_tail_is_refused_until_the_replica_is_emptied() -> TestResult {
    let root = tempfile::tempdir()?;
    let fsync = ["--fsync".to_string(), "no".to_string()];
    let mut replica = ServerProcess::start(
        &root.path().join("r"),
        0,
        &[&["--replica".to_string()][..], &fsync].concat(),
    )?;
    let master_extra = [
        &["--replicas".to_string(), replica.addr.clone()][..],
        &fsync,
    ]
    .concat();
    let master_dir = root.path().join("m");
    let mut master = ServerProcess::start(&master_dir, 0, &master_extra)?;
    set_each(&master.addr, "k", 0..50, b"first")?;
    converged_digest(
        &[master.addr.clone(), replica.addr.clone()],
        Duration::from_secs(10),
    )?;

    // The copy the master will come back from: its directory after the first 50 writes.
    master.kill();
    let earlier = root.path().join("m-earlier");
    std::fs::create_dir(&earlier)?;
    for entry in std::fs::read_dir(&master_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), earlier.join(entry.file_name()))?;
        }
    }
    master.restart()?;
    set_each(&master.addr, "k", 50..80, b"lost")?;
    converged_digest(
        &[master.addr.clone(), replica.addr.clone()],
        Duration::from_secs(10),
    )?;
    let applied: u64 = info_field(&mut replica.client()?, "replication", "applied_lsn")?.parse()?;
    master.kill();
    replica.kill();

    // The restored master writes past the replica's applied LSN while the replica is down.
    let restored = ServerProcess::start(&earlier, 0, &master_extra)?;
    set_each(&restored.addr, "n", 0..60, b"second")?;
    let mut admin = restored.client()?;
    let master_lsn: u64 = info_field(&mut admin, "replication", "master_lsn")?.parse()?;
    assert!(
        master_lsn > applied,
        "the restored master ({master_lsn}) must be past the replica ({applied})"
    );
    replica.restart()?;
    assert!(
        eventually(Duration::from_secs(10), || {
            info_field(&mut admin, "replication", "replica0")
                .is_ok_and(|r| r.contains("state=diverged"))
        }),
        "the replica was not refused: {:?}",
        info_field(&mut admin, "replication", "replica0")
    );
    let mut follower = replica.client()?;
    assert_eq!(
        info_field(&mut follower, "replication", "applied_lsn")?,
        applied.to_string()
    );
    assert_eq!(follower.get(b"k079")?, Some(b"lost".to_vec()));
    assert_eq!(follower.get(b"n000")?, None);

    // The operator empties the replica: the master's next probe is accepted and resyncs it.
    replica.kill();
    std::fs::remove_dir_all(&replica.dir)?;
    replica.restart()?;
    converged_digest(
        &[restored.addr.clone(), replica.addr.clone()],
        Duration::from_secs(15),
    )?;
    assert_eq!(replica.client()?.get(b"k079")?, None);
    Ok(())
}
