//! `CLIENT REPLY ON|OFF|SKIP`, as Redis serves it.
//!
//! Clients that fire-and-forget (Redisson's BatchOptions.skipResult() wraps a batch in
//! `CLIENT REPLY OFF` … `CLIENT REPLY ON`; bulk loaders do the same) count on those commands
//! suppressing the replies. redis-server 7.0.15, observed:
//!   CLIENT REPLY OFF, SET cro 1, CLIENT REPLY ON, GET cro  ->  +OK $1 1
//!   CLIENT REPLY SKIP, SET crs 1, PING                    ->  +PONG
//! kvstore used to answer `-ERR unknown subcommand 'REPLY'. Try CLIENT HELP.` and then every
//! reply that should have been suppressed, so such a client read replies that belong to other
//! requests.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn client_reply_off_suppresses_replies_until_on() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"CLIENT", b"REPLY", b"OFF"]);
    req.extend(resp(&[b"SET", b"cro", b"1"]));
    req.extend(resp(&[b"CLIENT", b"REPLY", b"ON"]));
    req.extend(resp(&[b"GET", b"cro"]));
    c.check(&req, b"+OK\r\n$1\r\n1\r\n")
}

#[test]
fn client_reply_skip_suppresses_the_next_reply() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"CLIENT", b"REPLY", b"SKIP"]);
    req.extend(resp(&[b"SET", b"crs", b"1"]));
    req.extend(resp(&[b"PING"]));
    c.check(&req, b"+PONG\r\n")
}

#[test]
fn replies_stay_off_across_pipelined_writes_and_skip_is_ignored_while_off() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"CLIENT", b"REPLY", b"OFF"]);
    for i in 0..50 {
        req.extend(resp(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
        req.extend(resp(&[b"INCR", b"n"]));
    }
    req.extend(resp(&[b"CLIENT", b"REPLY", b"SKIP"]));
    req.extend(resp(&[b"GET", b"n"]));
    req.extend(resp(&[b"CLIENT", b"REPLY", b"ON"]));
    req.extend(resp(&[b"GET", b"n"]));
    req.extend(resp(&[b"CLIENT", b"REPLY", b"MAYBE"]));
    c.check(&req, b"+OK\r\n$2\r\n50\r\n-ERR syntax error\r\n")
}
