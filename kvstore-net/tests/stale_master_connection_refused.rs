//! Over TCP, a replica serves only the connection whose HELLO opened the newest session. It
//! used to bind a connection's records to the epoch of its HELLO only: a connection of a dead
//! master incarnation (same epoch; its requests still buffered or in flight when the
//! restarted master says HELLO on a new connection) kept applying records after the new
//! incarnation's HELLO was accepted and its timeline stored. The replica then held writes its
//! master lost, under a timeline that says the new incarnation wrote them, and the master's
//! own records at those LSNs were ignored as duplicates: a silent divergence.

mod common;

use common::{resp, TestResult, TestServer};

fn hello(master_last_lsn: &str, timeline: &str) -> Vec<u8> {
    resp(&[
        b"REPLICATE",
        b"HELLO",
        b"m",
        b"1",
        master_last_lsn.as_bytes(),
        b"TIMELINE",
        timeline.as_bytes(),
    ])
}

#[test]
fn an_old_incarnations_connection_is_refused_once_the_new_one_said_hello() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    // Incarnation 7 of master "m" (epoch 1) streams LSNs 1 and 2.
    let mut old = server.raw()?;
    old.check_hello(&hello("0", "1:7:1"), [0, 1, -1, 0])?;
    old.check(&resp(&[b"REPLICATE", b"PUT", b"1", b"a", b"1"]), b":1\r\n")?;
    old.check(&resp(&[b"REPLICATE", b"PUT", b"2", b"b", b"2"]), b":2\r\n")?;
    // It crashes having synced only up to LSN 2 and restarts as incarnation 8 (first LSN 3).
    let mut new = server.raw()?;
    new.check_hello(&hello("2", "1:7:1,1:8:3"), [2, 1, -1, 0])?;
    // The old incarnation's LSN 3, sent before the crash, reaches the replica afterwards.
    old.send(&resp(&[b"REPLICATE", b"PUT", b"3", b"lost", b"old"]))?;
    let old_reply = old.read_lines(1)?;
    // The new incarnation writes its own LSN 3.
    new.send(&resp(&[b"REPLICATE", b"PUT", b"3", b"c", b"new"]))?;
    let new_reply = new.read_lines(1)?;
    let mut client = server.client()?;
    assert_eq!(
        client.get(b"lost")?,
        None,
        "the dead incarnation's record was applied after the new incarnation's HELLO \
         (old connection replied {old_reply:?}); the new incarnation's LSN 3 got {new_reply:?} \
         and is not on the replica: {:?}",
        client.get(b"c")?
    );
    Ok(())
}
