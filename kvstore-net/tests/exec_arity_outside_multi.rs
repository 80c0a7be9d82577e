//! Redis 7 answers an `EXEC` refused for its argument count with `-EXECABORT …` and forgets
//! the connection's watched keys, even outside `MULTI` (`rejectCommand` -> `execCommandAbort`
//! -> `discardTransaction`). This server used to answer `-ERR wrong number …` and keep the
//! watches, aborting the next transaction where Redis runs it.

mod common;

use std::io::Read;

use common::{resp, TestResult, TestServer};

/// One reply line, bytes as they came.
fn read_line(stream: &mut std::net::TcpStream) -> TestResult<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte)?;
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[test]
fn exec_with_arguments_outside_multi_is_execabort_and_unwatches() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut other = server.raw()?;
    other.check(&resp(&[b"SET", b"k", b"1"]), b"+OK\r\n")?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.send(&resp(&[b"EXEC", b"x"]))?;
    assert_eq!(
        read_line(&mut c.stream)?,
        "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    );
    other.check(&resp(&[b"SET", b"k", b"2"]), b"+OK\r\n")?;
    // The watch was discarded: Redis 7 runs this transaction.
    c.check(
        &[resp(&[b"MULTI"]), resp(&[b"GET", b"k"]), resp(&[b"EXEC"])].concat(),
        b"+OK\r\n+QUEUED\r\n*1\r\n$1\r\n2\r\n",
    )?;
    Ok(())
}
