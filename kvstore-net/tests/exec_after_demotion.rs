//! A transaction queued with a write on a master that became a replica before `EXEC`: Redis 7
//! refuses the whole `EXEC` with `-EXECABORT Transaction discarded because of: READONLY …`
//! and runs none of it. This server used to run the reads and answer each write with
//! `-READONLY` inside the array.

mod common;

use std::io::Read;

use common::{resp, TestResult, TestServer};

#[test]
fn exec_of_a_queued_write_after_demotion_is_execabort() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut admin = server.raw()?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"GET", b"k"]),
            resp(&[b"SET", b"k", b"v"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n",
    )?;
    admin.check(&resp(&[b"REPLICAOF", b"127.0.0.1", b"1"]), b"+OK\r\n")?;
    c.send(&resp(&[b"EXEC"]))?;
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while !first.ends_with(b"\r\n") {
        c.stream.read_exact(&mut byte)?;
        first.push(byte[0]);
    }
    assert_eq!(
        first.escape_ascii().to_string(),
        "-EXECABORT Transaction discarded because of: READONLY You can\\'t write against a read only replica.\\r\\n"
    );
    Ok(())
}
