//! A key without a value at `WATCH` and at `EXEC` that was written and deleted in between
//! aborts the `EXEC`, as in Redis. It used to count as unchanged, so two consumers that both
//! read the key after `WATCH` could both claim one job.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn a_key_created_read_and_deleted_after_watch_aborts_exec() -> TestResult {
    let server = TestServer::start()?;
    let mut a = server.raw()?;
    let mut b = server.raw()?;
    let mut producer = server.raw()?;

    // Consumer A watches the job slot while it is still empty.
    a.check(&resp(&[b"WATCH", b"job"]), b"+OK\r\n")?;
    // The producer posts a job; A reads it under its watch.
    producer.check(&resp(&[b"SET", b"job", b"payload"]), b"+OK\r\n")?;
    a.check(&resp(&[b"GET", b"job"]), b"$7\r\npayload\r\n")?;

    // Consumer B claims the job first (a check-and-set of its own that succeeds).
    b.check(&resp(&[b"WATCH", b"job"]), b"+OK\r\n")?;
    b.check(&resp(&[b"GET", b"job"]), b"$7\r\npayload\r\n")?;
    b.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"DEL", b"job"]),
            resp(&[b"SET", b"owner:b", b"payload"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n+OK\r\n",
    )?;

    // A now tries to claim the job it read: `job` changed (payload -> gone) since A read it,
    // so its EXEC must be aborted.
    a.send(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"DEL", b"job"]),
            resp(&[b"SET", b"owner:a", b"payload"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
    )?;
    a.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n")?;
    let mut exec = [0u8; 5];
    std::io::Read::read_exact(&mut a.stream, &mut exec)?;
    assert_eq!(
        exec.escape_ascii().to_string(),
        "*-1\\r\\n",
        "A's EXEC ran: both consumers claimed the job"
    );
    Ok(())
}

/// The same through a second `WATCH`: a key watched again keeps its first state (absent), so
/// the value the client read after re-watching it is not protected either.
#[test]
fn rewatching_a_key_that_appeared_protects_the_value_read() -> TestResult {
    let server = TestServer::start()?;
    let mut a = server.raw()?;
    let mut other = server.raw()?;
    a.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.check(&resp(&[b"SET", b"k", b"x"]), b"+OK\r\n")?;
    a.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    a.check(&resp(&[b"GET", b"k"]), b"$1\r\nx\r\n")?;
    other.check(&resp(&[b"DEL", b"k"]), b":1\r\n")?;
    a.send(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"seen", b"x"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
    )?;
    a.expect(b"+OK\r\n+QUEUED\r\n")?;
    let mut exec = [0u8; 5];
    std::io::Read::read_exact(&mut a.stream, &mut exec)?;
    assert_eq!(
        exec.escape_ascii().to_string(),
        "*-1\\r\\n",
        "EXEC ran although k changed from x to absent since the client read it under WATCH"
    );
    Ok(())
}
