//! The WAL a master keeps for its replicas outlives its shutdown (saved with the store, like
//! a PostgreSQL replication slot), and goes when the node is a replica: demoted with
//! `REPLICAOF host port`, or started with `--replica`.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::KvStore;

fn consumers_in(dir: &std::path::Path) -> TestResult<Vec<(String, u64)>> {
    Ok(KvStore::open(dir)?.wal_consumers())
}

#[test]
fn retention_is_kept_at_shutdown_and_released_by_demotion() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let master_dir = tempfile::tempdir()?;
    let config = || -> TestResult<kvstore_net::ServerConfig> {
        Ok(kvstore_net::ServerConfig::new(master_dir.path())
            .bind("127.0.0.1:0".parse()?)
            .replicas(vec![replica.addr()]))
    };
    let master = kvstore_net::Server::start(config()?)?;
    let mut client = kvstore_net::Client::connect(&master.local_addr().to_string())?;
    client.set(b"k", b"v")?;
    assert!(eventually(Duration::from_secs(10), || master
        .store()
        .wal_consumers()
        .iter()
        .any(|(_, lsn)| *lsn >= 1)));
    drop(client);
    master.shutdown()?;
    let kept = consumers_in(master_dir.path())?;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].0.ends_with(&replica.addr()), "{kept:?}");

    let master = kvstore_net::Server::start(config()?)?;
    let mut raw = Raw::connect(&master.local_addr().to_string())?;
    raw.check(&resp(&[b"REPLICAOF", b"127.0.0.1", b"1"]), b"+OK\r\n")?;
    drop(raw);
    master.shutdown()?;
    assert_eq!(consumers_in(master_dir.path())?, vec![]);
    Ok(())
}

#[test]
fn a_node_started_as_a_replica_releases_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = KvStore::open(dir.path())?;
        store.retain_wal("replica:127.0.0.1:7001", 0);
    }
    let node = kvstore_net::Server::start(
        kvstore_net::ServerConfig::new(dir.path())
            .bind("127.0.0.1:0".parse()?)
            .replica(true),
    )?;
    node.shutdown()?;
    assert_eq!(consumers_in(dir.path())?, vec![]);
    Ok(())
}
