//! Once a connection's stream is found broken (a protocol error), nothing the client sent
//! after the bad bytes runs: the requests before it are answered, then the error, then the
//! connection closes (as Redis does, and as `handler::serve` does on a thread). On the event
//! loop, a protocol error met while gathering a commit group (a run of pipelined `SET`s, or
//! of `INCR`s) was remembered, but after the commit the loop decoded the buffer again; a `*N`
//! header over the argument limit leaves the decoder past the header, so the bytes after it
//! ran as fresh requests, and the error was never sent.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{resp, TestResult, TestServer};

fn run_case(first: &[u8], first_reply: &[u8], marker: &str) -> TestResult {
    let server = TestServer::start()?;
    let mut raw = server.raw()?;
    let mut bytes = first.to_vec();
    // Over the 1,048,576-argument limit: a protocol error.
    bytes.extend_from_slice(b"*99999999999\r\n");
    // Must never run: it comes after the stream broke.
    bytes.extend_from_slice(format!("SET {marker} 1\r\n").as_bytes());
    raw.send(&bytes)?;
    raw.stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = Vec::new();
    let _ = raw.stream.read_to_end(&mut got);
    let expected = [
        first_reply,
        b"-ERR Protocol error: multibulk length 99999999999 exceeds the limit of 1048576 arguments\r\n",
    ]
    .concat();
    let mut client = server.client()?;
    let exists = client.integer(&["EXISTS", marker])?;
    assert_eq!(
        got.escape_ascii().to_string(),
        expected.escape_ascii().to_string(),
        "replies after a protocol error (the key {marker} exists: {exists})"
    );
    assert_eq!(exists, 0, "a request sent after the protocol error ran");
    Ok(())
}

#[test]
fn nothing_after_a_protocol_error_runs_after_a_set_run() -> TestResult {
    run_case(&resp(&[b"SET", b"a", b"1"]), b"+OK\r\n", "pwned_after_set")
}

#[test]
fn nothing_after_a_protocol_error_runs_after_an_incr() -> TestResult {
    run_case(&resp(&[b"INCR", b"counter"]), b":1\r\n", "pwned_after_incr")
}
