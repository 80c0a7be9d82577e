//! `MULTI` / `EXEC` / `DISCARD`: exact replies, a transaction's reads seeing its own writes,
//! all its writes committed as one batch, and isolation from writers on other event loops.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};
use kvstore_net::Frame;

#[test]
fn a_transaction_queues_then_runs_with_its_own_writes_visible() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+OK\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"-ERR EXEC without MULTI\r\n")?;
    c.check(&resp(&[b"DISCARD"]), b"-ERR DISCARD without MULTI\r\n")?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"MULTI"]),
        b"-ERR MULTI calls can not be nested\r\n",
    )?;
    let mut queued = Vec::new();
    for request in [
        &[&b"GET"[..], b"a"][..],
        &[b"SET", b"a", b"2"],
        &[b"MSET", b"b", b"3", b"c", b"4"],
        &[b"GET", b"a"],
        &[b"DEL", b"a", b"b", b"a", b"nope"],
        &[b"MGET", b"a", b"b", b"c"],
        &[b"EXISTS", b"a", b"c", b"c"],
        &[b"DBSIZE"],
        &[b"PING"],
    ] {
        queued.extend(resp(request));
    }
    c.check(&queued, &b"+QUEUED\r\n".repeat(9))?;
    c.check(
        &resp(&[b"EXEC"]),
        b"*9\r\n$1\r\n1\r\n+OK\r\n+OK\r\n$1\r\n2\r\n:2\r\n*3\r\n$-1\r\n$-1\r\n$1\r\n4\r\n:2\r\n:1\r\n+PONG\r\n",
    )?;
    let mut client = server.client()?;
    assert_eq!(client.get(b"a")?, None);
    assert_eq!(client.get(b"c")?, Some(b"4".to_vec()));
    assert_eq!(client.integer(&["DBSIZE"])?, 1);
    // All of a transaction's writes are one record.
    let before = server.handle.as_ref().map_or(0, |h| h.store().last_lsn());
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"x", b"1"]),
            resp(&[b"SET", b"y", b"2"]),
            resp(&[b"DEL", b"c"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n:1\r\n",
    )?;
    let after = server.handle.as_ref().map_or(0, |h| h.store().last_lsn());
    assert_eq!(after, before + 1);
    Ok(())
}

#[test]
fn a_refused_command_discards_the_transaction_at_exec() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+QUEUED\r\n")?;
    c.check(
        &resp(&[b"SET", b"a"]),
        b"-ERR wrong number of arguments for 'set' command\r\n",
    )?;
    c.check(
        &resp(&[b"SET", b"a", b"1", b"EX", b"5"]),
        b"-ERR syntax error\r\n",
    )?;
    c.check(
        &resp(&[b"NOSUCH"]),
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )?;
    c.check(
        &resp(&[b"WAIT", b"0", b"0"]),
        b"-ERR Command not allowed inside a transaction\r\n",
    )?;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    c.check(&resp(&[b"GET", b"a"]), b"$-1\r\n")?;
    // DISCARD drops the queue; the connection is out of the transaction.
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+QUEUED\r\n")?;
    c.check(&resp(&[b"DISCARD"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"$-1\r\n")?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"*0\r\n")?;
    Ok(())
}

#[test]
fn a_replica_refuses_writes_in_a_transaction_and_serves_reads() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"+QUEUED\r\n")?;
    c.check(
        &resp(&[b"SET", b"a", b"1"]),
        b"-READONLY You can't write against a read only replica.\r\n",
    )?;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"+QUEUED\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"*1\r\n$-1\r\n")?;
    Ok(())
}

/// A transaction's reads see one state of the store: writers on the other event loop
/// (`MSET a i b i`, with increasing `i`) never land between them.
#[test]
fn transactions_are_isolated_from_writers_on_other_loops() -> TestResult {
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    let mut reader = server.client()?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = kvstore_net::Client::connect(&addr)?;
        std::thread::spawn(move || -> Result<u64, kvstore_net::Error> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let v = i.to_string();
                client.expect_ok(&["MSET", "a", &v, "b", &v])?;
            }
            Ok(i)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut checked = 0;
    while Instant::now() < deadline {
        let replies = [
            reader.command(&["MULTI"])?,
            reader.command(&["GET", "a"])?,
            reader.command(&["GET", "b"])?,
            reader.command(&["EXEC"])?,
        ];
        let Frame::Array(values) = &replies[3] else {
            return Err(format!("EXEC replied {:?}", replies[3]).into());
        };
        assert_eq!(
            values[0], values[1],
            "a transaction saw a and b from different writes"
        );
        checked += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().map_err(|_| "writer panicked")??;
    assert!(
        checked > 10 && writes > 10,
        "{checked} transactions, {writes} writes"
    );
    Ok(())
}
