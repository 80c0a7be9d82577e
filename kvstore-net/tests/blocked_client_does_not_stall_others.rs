//! A client in a command that blocks (WAIT, a write waiting for its replica quorum) runs on a
//! thread of its own: the other clients of the event loop are served meanwhile.

mod common;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use common::{info_field, resp, Raw, TestResult, TestServer};
use kvstore_net::ReplicationMode;

/// A replica address nothing listens on: the master's replicator never gets an ack.
const UNREACHABLE_REPLICA: &str = "127.0.0.1:1";

/// Whether no reply byte has arrived on `raw` yet.
fn nothing_yet(raw: &mut Raw) -> TestResult<bool> {
    raw.stream.set_nonblocking(true)?;
    let mut byte = [0u8; 1];
    let waiting = matches!(raw.stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    raw.stream.set_nonblocking(false)?;
    Ok(waiting)
}

#[test]
fn a_client_blocked_in_wait_does_not_delay_another_clients_get() -> TestResult {
    let server = TestServer::start_with(|c| c.replicas(vec![UNREACHABLE_REPLICA.into()]))?;
    let mut other = server.raw()?;
    other.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    let mut waiter = server.raw()?;
    waiter.send(&resp(&[b"WAIT", b"1", b"0"]))?;
    let mut info = server.client()?;
    assert!(common::eventually(Duration::from_secs(5), || {
        info_field(&mut info, "clients", "blocked_clients").is_ok_and(|n| n == "1")
    }));
    for _ in 0..100 {
        other.check(&resp(&[b"GET", b"k"]), b"$1\r\nv\r\n")?;
    }
    other.check(&resp(&[b"SET", b"k", b"w"]), b"+OK\r\n")?;
    assert!(
        nothing_yet(&mut waiter)?,
        "WAIT 1 0 answered without a replica"
    );
    // Shutdown answers the blocked WAIT with its count so far.
    drop(server);
    waiter.expect(b":0\r\n")?;
    Ok(())
}

#[test]
fn a_write_waiting_for_its_quorum_does_not_delay_reads() -> TestResult {
    let server = TestServer::start_with(|c| {
        c.replicas(vec![UNREACHABLE_REPLICA.into()])
            .replication_mode(ReplicationMode::Sync {
                quorum: 1,
                timeout: Duration::from_secs(3),
            })
    })?;
    let mut writer = server.raw()?;
    writer.send(&resp(&[b"SET", b"waits", b"v"]))?;
    let mut reader = server.raw()?;
    for _ in 0..100 {
        reader.check(&resp(&[b"PING"]), b"+PONG\r\n")?;
    }
    // The write is committed here soon; its reply waits for the quorum.
    let mut client = server.client()?;
    assert!(common::eventually(Duration::from_secs(2), || {
        client.integer(&["EXISTS", "waits"]).is_ok_and(|n| n == 1)
    }));
    assert!(
        nothing_yet(&mut writer)?,
        "the write answered before its quorum timeout"
    );
    writer.expect(b"-ERR ")?;
    Ok(())
}
