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
        b"-ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.\r\n",
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
    c.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"127.0.0.1:7000", b"3", b"10"]),
        [0, 3, -1, 0],
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
        b"-DIVERGED replica applied up to LSN 3 but its log agrees with the master's only up to LSN 0\r\n",
    )?;
    Ok(())
}

/// `REPLICATE HELLO m 1 <master-last-lsn> <options…>`.
fn hello(master_last_lsn: &str, options: &[&str]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![
        b"REPLICATE",
        b"HELLO",
        b"m",
        b"1",
        master_last_lsn.as_bytes(),
    ];
    args.extend(options.iter().map(|o| o.as_bytes()));
    resp(&args)
}

#[test]
fn hello_timelines_refuse_a_master_that_rewrote_applied_lsns() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check_hello(&hello("0", &["TIMELINE", "1:7:1"]), [0, 1, -1, 0])?;
    c.check(&resp(&[b"REPLICATE", b"PUT", b"1", b"a", b"1"]), b":1\r\n")?;
    c.check(&resp(&[b"REPLICATE", b"PUT", b"2", b"b", b"2"]), b":2\r\n")?;
    // The master lost LSN 2 and restarted there (incarnation 8): it now has another LSN 2.
    let mut restarted = server.raw()?;
    restarted.check(
        &hello("5", &["TIMELINE", "1:7:1,1:8:2"]),
        b"-DIVERGED replica applied up to LSN 2 but its log agrees with the master's only up to LSN 1\r\n",
    )?;
    // A restart that kept both records is followed; FORCE and TIMELINE in either order.
    restarted.check_hello(&hello("5", &["TIMELINE", "1:7:1,1:9:3"]), [2, 1, -1, 0])?;
    restarted.check_hello(
        &hello("5", &["TIMELINE", "1:7:1,1:8:2", "FORCE"]),
        [2, 1, -1, 0],
    )?;
    for (bad, why) in [
        ("1:7", "an entry is not epoch:incarnation:start"),
        ("1:7:2,1:8:2", "starts do not ascend"),
        ("x:y:z", "not a number"),
    ] {
        restarted.check(
            &hello("5", &["TIMELINE", bad]),
            format!("-ERR protocol violation: bad timeline \"{bad}\": {why}\r\n").as_bytes(),
        )?;
    }
    restarted.check(
        &hello("5", &["TIMELINE"]),
        b"-ERR wrong number of arguments for 'replicate' command\r\n",
    )?;
    restarted.check(&hello("5", &["LATER"]), b"-ERR syntax error\r\n")?;
    assert_eq!(server.store_len(), 2, "no refusal touched the data");
    Ok(())
}

#[test]
fn pipelined_records_get_their_own_replies_in_order_and_share_a_commit() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"m", b"1", b"20"]),
        [0, 1, -1, 0],
    )?;
    let fsyncs_before = server.fsyncs();
    // One write holding a window as a master pipelines it, with a gap, a duplicate and a
    // malformed record in the middle: each keeps the reply it gets when sent alone.
    let requests: [&[&[u8]]; 9] = [
        &[b"REPLICATE", b"PUT", b"1", b"a", b"1"],
        &[b"REPLICATE", b"put", b"2", b"b", b"2"],
        &[b"REPLICATE", b"DELETE", b"4", b"a"],
        &[b"REPLICATE", b"BATCHPUT", b"3", b"c", b"3", b"d", b"4"],
        &[b"REPLICATE", b"PUT", b"2", b"b", b"stale"],
        &[b"REPLICATE", b"PUT", b"x", b"k", b"v"],
        &[b"REPLICATE", b"BATCHPUT", b"4", b"odd"],
        &[
            b"REPLICATE",
            b"BATCH",
            b"4",
            b"DEL",
            b"a",
            b"PUT",
            b"e",
            b"5",
        ],
        &[b"REPLICATE", b"DEL", b"5", b"b"],
    ];
    let window: Vec<u8> = requests.iter().flat_map(|r| resp(r)).collect();
    c.check(
        &window,
        b":1\r\n:2\r\n:2\r\n:3\r\n:3\r\n\
          -ERR value is not an integer or out of range\r\n\
          -ERR wrong number of arguments for 'replicate' command\r\n:4\r\n:5\r\n",
    )?;
    let fsyncs = server.fsyncs() - fsyncs_before;
    assert!(
        (1..5).contains(&fsyncs),
        "5 records applied with {fsyncs} fsyncs: the window was not committed together"
    );
    c.check(
        &resp(&[b"MGET", b"a", b"b", b"c", b"d", b"e"]),
        b"*5\r\n$-1\r\n$-1\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n",
    )?;
    // The session goes on after the window: the next record, then a gap.
    c.check(&resp(&[b"REPLICATE", b"PUT", b"6", b"f", b"6"]), b":6\r\n")?;
    c.check(
        &[
            resp(&[b"REPLICATE", b"PUT", b"8", b"g", b"8"]),
            resp(&[b"REPLICATE", b"PUT", b"7", b"g", b"7"]),
        ]
        .concat(),
        b":6\r\n:7\r\n",
    )?;
    c.check(&resp(&[b"GET", b"g"]), b"$1\r\n7\r\n")?;
    assert_eq!(server.store_len(), 5);
    Ok(())
}

#[test]
fn snapshot_chunks_replace_the_contents() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"m", b"1", b"50"]),
        [0, 1, -1, 0],
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
    fn fsyncs(&self) -> u64;
}

impl StoreLen for TestServer {
    fn store_len(&self) -> usize {
        self.handle.as_ref().map_or(0, |h| h.store().len())
    }

    fn fsyncs(&self) -> u64 {
        self.handle.as_ref().map_or(0, |h| h.store().stats().fsyncs)
    }
}
