//! A replica: refuses client writes with Redis's READONLY error, serves reads, and speaks the
//! REPLICATE session protocol (epochs, gaps, duplicates, snapshots) with exact replies.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn replica_refuses_client_writes_and_serves_reads() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    let readonly = b"-READONLY You can't write against a read only replica.\r\n";
    c.check(&resp(&[b"SET", b"k", b"v"]), readonly)?;
    c.check(&resp(&[b"PUT", b"k", b"v"]), readonly)?;
    c.check(&resp(&[b"DEL", b"k"]), readonly)?;
    c.check(&resp(&[b"MSET", b"k", b"v"]), readonly)?;
    c.check(&resp(&[b"GET", b"k"]), b"$-1\r\n")?;
    c.check(
        &resp(&[b"WAIT", b"1", b"10"]),
        b"-ERR WAIT cannot be used with replica instances.\r\n",
    )?;
    c.check(
        &resp(&[b"ROLE"]),
        b"*5\r\n$5\r\nslave\r\n$1\r\n?\r\n:0\r\n$7\r\nconnect\r\n:0\r\n",
    )?;
    assert_eq!(server.store_len(), 0);
    Ok(())
}

#[test]
fn replicate_session_applies_in_order_and_reports_gaps() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"REPLICATE", b"PUT", b"1", b"k", b"v"]),
        b"-NOSESSION no replication session: send HELLO first\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"HELLO", b"127.0.0.1:7000", b"3", b"10"]),
        b"*4\r\n:0\r\n:3\r\n:-1\r\n:0\r\n",
    )?;
    c.check(&resp(&[b"REPLICATE", b"PUT", b"1", b"k", b"v1"]), b":1\r\n")?;
    // A gap: LSN 3 before 2 is not applied, the reply says "applied up to 1".
    c.check(&resp(&[b"REPLICATE", b"DELETE", b"3", b"k"]), b":1\r\n")?;
    c.check(
        &resp(&[b"REPLICATE", b"BATCHPUT", b"2", b"a", b"1", b"b", b"2"]),
        b":2\r\n",
    )?;
    c.check(
        &resp(&[
            b"REPLICATE",
            b"BATCH",
            b"3",
            b"DEL",
            b"a",
            b"PUT",
            b"c",
            b"3",
        ]),
        b":3\r\n",
    )?;
    // A duplicate is acknowledged and ignored.
    c.check(&resp(&[b"REPLICATE", b"PUT", b"2", b"a", b"x"]), b":3\r\n")?;
    c.check(
        &resp(&[b"MGET", b"a", b"b", b"c", b"k"]),
        b"*4\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\nv1\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"PUT", b"x", b"k", b"v"]),
        b"-ERR value is not an integer or out of range\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"PUT", b"4", b"k"]),
        b"-ERR wrong number of arguments for 'replicate' command\r\n",
    )?;
    // A master of a lower epoch is refused; the session epoch is kept durably.
    let mut old = server.raw()?;
    old.check(
        &resp(&[b"REPLICATE", b"HELLO", b"old", b"2", b"100"]),
        b"-STALEEPOCH replica follows epoch 3, refusing master epoch 2\r\n",
    )?;
    // A master whose log ends before our applied LSN is refused as diverged.
    old.check(
        &resp(&[b"REPLICATE", b"HELLO", b"empty", b"4", b"0"]),
        b"-DIVERGED replica applied up to LSN 3 but the master's log ends at LSN 0\r\n",
    )?;
    Ok(())
}

#[test]
fn snapshot_chunks_replace_the_contents() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"REPLICATE", b"HELLO", b"m", b"1", b"50"]),
        b"*4\r\n:0\r\n:1\r\n:-1\r\n:0\r\n",
    )?;
    c.check(
        &resp(&[
            b"REPLICATE",
            b"SNAPSHOT",
            b"50",
            b"0",
            b"0",
            b"big",
            b"0",
            b"6",
            b"abc",
        ]),
        b"*3\r\n:1\r\n:0\r\n:0\r\n",
    )?;
    c.check(
        &resp(&[
            b"REPLICATE",
            b"SNAPSHOT",
            b"50",
            b"1",
            b"1",
            b"big",
            b"3",
            b"6",
            b"def",
            b"small",
            b"0",
            b"1",
            b"s",
        ]),
        b"*3\r\n:2\r\n:50\r\n:1\r\n",
    )?;
    c.check(
        &resp(&[b"MGET", b"big", b"small"]),
        b"*2\r\n$6\r\nabcdef\r\n$1\r\ns\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"PUT", b"51", b"n", b"1"]),
        b":51\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"SNAPSHOT", b"60", b"0", b"0", b"k", b"0"]),
        b"-ERR wrong number of arguments for 'replicate' command\r\n",
    )?;
    Ok(())
}

trait StoreLen {
    fn store_len(&self) -> usize;
}

impl StoreLen for TestServer {
    fn store_len(&self) -> usize {
        self.handle.as_ref().map_or(0, |h| h.store().len())
    }
}
