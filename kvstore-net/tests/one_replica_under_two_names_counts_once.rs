//! One replica counts once, however it is named. `--replicas` names one replica twice under
//! two spellings of the same loopback address (`127.0.0.1:P` and `127.1:P`, which resolves
//! to 127.0.0.1); validation only rejects identical strings, so the master runs two workers
//! against one replica. Each booked that replica's acks: with `--write-quorum 2` a write was
//! acknowledged although only one replica holds it. Now every HELLO reply carries the id the
//! replica drew at start, and a second session with an id already connected is refused.

mod common;

use common::{info_field, ServerProcess, TestResult};
use kvstore_net::Frame;

#[test]
fn one_replica_under_two_names_is_not_a_quorum_of_two() -> TestResult {
    let root = tempfile::tempdir()?;
    let replica = ServerProcess::start(
        &root.path().join("r"),
        0,
        &["--replica".into(), "--fsync".into(), "no".into()],
    )?;
    let port = replica.port();
    let list = format!("127.0.0.1:{port},127.1:{port}");
    let master = ServerProcess::start(
        &root.path().join("m"),
        0,
        &[
            "--replicas".into(),
            list,
            "--replication-mode".into(),
            "sync".into(),
            "--write-quorum".into(),
            "2".into(),
            "--sync-timeout-ms".into(),
            "500".into(),
            "--fsync".into(),
            "no".into(),
        ],
    )?;
    let mut client = master.client()?;
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let key = format!("k{i}");
        if let Frame::Simple(ok) = client.command(&["SET", &key, "v"])? {
            assert_eq!(ok, "OK");
            acknowledged.push(key);
        }
    }
    let rows: Vec<String> = (0..2)
        .map(|i| info_field(&mut client, "replication", &format!("replica{i}")).unwrap_or_default())
        .collect();
    assert!(
        acknowledged.is_empty(),
        "writes {acknowledged:?} were acknowledged with a write quorum of 2 although only one \
         replica process exists; INFO: {rows:?}"
    );
    drop(master);
    drop(replica);
    Ok(())
}
