//! A full resync sends the snapshot in chunks of about 1 MiB of keys and values, four
//! arguments per entry. A store of tiny entries (3-byte keys, empty values) fitted 300,000
//! entries in one chunk: 1.2 million arguments, over the replica's limit of 1,048,576 per
//! request, so the replica refused that chunk on every retry and the resync never finished.
//! Chunks now carry at most `MAX_SNAPSHOT_CHUNK_ENTRIES`. Found in review.

mod common;

use std::time::Duration;

use common::{eventually, TestResult, TestServer};
use kvstore_core::SyncPolicy;
use kvstore_net::{Client, Server, ServerConfig};

const KEYS: u32 = 300_000;

#[test]
fn a_store_of_small_entries_can_be_resynced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = || {
        ServerConfig::new(dir.path())
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .sync_policy(SyncPolicy::Never)
    };
    // A master without replicas takes the writes, then compacts: its log no longer holds
    // them, so a replica attached later needs a snapshot.
    let master = Server::start(config())?;
    let mut m = Client::connect(&master.local_addr().to_string())?;
    let mut args: Vec<Vec<u8>> = Vec::new();
    for i in 0..KEYS {
        if args.is_empty() {
            args.push(b"MSET".to_vec());
        }
        args.push(i.to_be_bytes()[1..].to_vec());
        args.push(Vec::new());
        if args.len() > 20_000 || i == KEYS - 1 {
            m.expect_ok(&args)?;
            args.clear();
        }
    }
    assert_eq!(m.integer(&["DBSIZE"])?, i64::from(KEYS));
    m.expect_ok(&["COMPACT"])?;
    drop(m);
    master.shutdown()?;

    let replica = TestServer::start_with(|c| c.replica(true).sync_policy(SyncPolicy::Never))?;
    let master = Server::start(config().replicas(vec![replica.addr()]))?;
    let mut r = replica.client()?;
    let synced = eventually(Duration::from_secs(60), || {
        r.integer(&["DBSIZE"]).ok() == Some(i64::from(KEYS))
    });
    let mut m = Client::connect(&master.local_addr().to_string())?;
    assert!(
        synced,
        "the replica never got the snapshot: DBSIZE {:?}; master INFO {:?}",
        r.integer(&["DBSIZE"]).ok(),
        m.info("replication")?
    );
    Ok(())
}
