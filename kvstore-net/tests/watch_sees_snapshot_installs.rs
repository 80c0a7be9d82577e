//! A replica's snapshot install (a full resync after a failover) that replaces a watched
//! key's value under the LSN it already had aborts the watching `EXEC`, as Redis's full sync
//! does (it empties the data set, touching every watched key). It used to go unseen, since
//! `WATCH` compared LSNs only.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn watched_key_replaced_by_a_snapshot_at_its_own_lsn_aborts_exec() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    // A master (this test) that wrote k = A at LSN 1.
    let mut master = server.raw()?;
    master.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"old-master", b"1", b"1"]),
        [0, 1, -1, 0],
    )?;
    master.check(&resp(&[b"REPLICATE", b"PUT", b"1", b"k", b"A"]), b":1\r\n")?;

    // A client reads k under WATCH.
    let mut c = server.raw()?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"k"]), b"$1\r\nA\r\n")?;

    // Failover: a new master (higher epoch) whose own LSN 1 wrote k = B forces a resync
    // with its snapshot at LSN 1.
    let mut new_master = server.raw()?;
    new_master.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"new-master", b"2", b"1", b"FORCE"]),
        [1, 2, -1, 0],
    )?;
    new_master.check(
        &resp(&[
            b"REPLICATE",
            b"SNAPSHOT",
            b"1",
            b"0",
            b"1",
            b"k",
            b"0",
            b"1",
            b"B",
        ]),
        b"*3\r\n:1\r\n:1\r\n:1\r\n",
    )?;
    let mut other = server.raw()?;
    other.check(&resp(&[b"GET", b"k"]), b"$1\r\nB\r\n")?;

    // k changed from A to B since WATCH: EXEC must answer a null array.
    c.send(&[resp(&[b"MULTI"]), resp(&[b"GET", b"k"]), resp(&[b"EXEC"])].concat())?;
    c.expect(b"+OK\r\n+QUEUED\r\n")?;
    let mut rest = [0u8; 5];
    std::io::Read::read_exact(&mut c.stream, &mut rest)?;
    assert_eq!(
        rest.escape_ascii().to_string(),
        "*-1\\r\\n",
        "EXEC ran although the watched key changed from A to B (snapshot install kept its LSN)"
    );
    Ok(())
}
