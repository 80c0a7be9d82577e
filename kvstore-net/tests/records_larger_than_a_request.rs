//! Records larger than one request can carry still reach replicas over TCP. A record over
//! the 64 MiB blob limit used to travel as one text command, which a replica refuses past its
//! 128 MiB request limit (an MSET within every client limit grew 14 bytes past it; a batch
//! the engine accepts may reach 1 GiB): the master resent it for ever and nothing written
//! after it arrived. Found in review (twice). Such records now travel in `REPLICATE LOGPART`s.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, TestResult, TestServer};
use kvstore_core::{Options, SyncPolicy, WriteBatch};
use kvstore_net::parse::MAX_REQUEST_BYTES;
use kvstore_net::{Frame, TcpTransport};
use kvstore_replication::Replicator;

#[test]
fn an_mset_at_the_request_limit_replicates() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true).sync_policy(SyncPolicy::Never))?;
    let replica_addr = replica.addr();
    let master = TestServer::start_with(|c| {
        c.replicas(vec![replica_addr.clone()])
            .sync_policy(SyncPolicy::Never)
    })?;
    let mut m = master.client()?;
    // "MSET", "a", "b" and two values: exactly the request limit.
    let value = vec![b'x'; (MAX_REQUEST_BYTES - 6) / 2];
    assert_eq!(
        m.command(&[&b"MSET"[..], b"a", &value, b"b", &value])?,
        Frame::ok()
    );
    m.set(b"after", b"2")?;
    let mut r = replica.client()?;
    let arrived = eventually(Duration::from_secs(60), || {
        r.get(b"after").ok().flatten().is_some()
    });
    assert!(arrived, "master INFO: {:?}", m.info("replication")?);
    assert_eq!(r.get(b"a")?.as_deref(), Some(&value[..]));
    assert_eq!(m.digest()?, r.digest()?);
    Ok(())
}

#[test]
fn a_batch_of_135_mib_reaches_the_replica() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true).sync_policy(SyncPolicy::Never))?;
    let master_dir = tempfile::tempdir()?;
    let master = Options::new()
        .sync_policy(SyncPolicy::Never)
        .open(master_dir.path())?;
    let repl = Replicator::builder()
        .replica(TcpTransport::new(replica.addr(), None))
        .ack_timeout(Duration::from_secs(20))
        .attach(&master)?;
    master.put(b"before", b"1")?;
    let mut batch = WriteBatch::new();
    for i in 0..3u8 {
        batch.put([b'b', i], vec![i; 45 << 20]);
    }
    master.write_batch(batch)?;
    master.put(b"after", b"2")?;
    let last = master.last_lsn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && repl.status().replicas[0].acked_lsn < last {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = repl.status();
    assert_eq!(
        status.replicas[0].acked_lsn, last,
        "{:?}",
        status.replicas[0]
    );
    let mut r = replica.client()?;
    assert_eq!(r.get(&[b'b', 2])?, Some(vec![2u8; 45 << 20]));
    assert_eq!(r.get(b"after")?, Some(b"2".to_vec()));
    Ok(())
}
