//! `WAIT` inside MULTI/EXEC is queued, as in Redis; inside EXEC it does not block and answers
//! the replicas that already acknowledged. redis-server 7.0.15 (no replicas), observed:
//!   MULTI, SET mw 1, WAIT 0 0, EXEC
//!     -> +OK +QUEUED +QUEUED *2 +OK :0
//! kvstore refused it while queueing (`-ERR Command not allowed inside a transaction`) and
//! EXEC answered -EXECABORT: the writes queued with it were thrown away. Clients that append
//! WAIT to an atomic batch (e.g. Redisson's BatchOptions.syncSlaves with an atomic execution
//! mode) lost the whole transaction.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn wait_is_queued_inside_a_transaction() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"MULTI"]);
    req.extend(resp(&[b"SET", b"mw", b"1"]));
    req.extend(resp(&[b"WAIT", b"0", b"0"]));
    req.extend(resp(&[b"EXEC"]));
    c.check(&req, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:0\r\n")?;
    c.check(&resp(&[b"GET", b"mw"]), b"$1\r\n1\r\n")
}

#[test]
fn a_queued_wait_does_not_block_and_checks_its_arguments() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"MULTI"]);
    req.extend(resp(&[b"WAIT", b"3", b"0"]));
    req.extend(resp(&[b"WAIT", b"1", b"-1"]));
    req.extend(resp(&[b"EXEC"]));
    c.check(
        &req,
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:0\r\n-ERR timeout is negative\r\n",
    )
}
