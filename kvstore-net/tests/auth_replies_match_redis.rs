//! `AUTH` replies are Redis's for the same input (checked against redis-server 7.0.15):
//!
//! - Without `requirepass`, the default user takes any password, so `AUTH default <anything>`
//!   answers `+OK` (only the one-argument form `AUTH <password>` is refused), as this
//!   server's own `HELLO 2 AUTH default <anything>` always did.
//! - `AUTH` with more than two arguments answers `-ERR syntax error` (Redis's authCommand
//!   checks `argc > 3` itself; the command's arity is -2), not an arity error.

mod common;

use common::{resp, Raw, TestResult, TestServer};

/// Sends `request` and returns the one-line reply it gets.
fn one_line(c: &mut Raw, request: &[u8]) -> TestResult<String> {
    c.send(request)?;
    c.read_lines(1)
}

#[test]
fn auth_with_username_and_no_requirepass_is_accepted_as_hello_accepts_it() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    // This server's own HELLO takes the same credentials...
    c.send(&resp(&[b"HELLO", b"2", b"AUTH", b"default", b"whatever"]))?;
    let hello = c.read_lines(15)?;
    assert!(
        hello.starts_with("*14\r\n"),
        "HELLO AUTH default: {hello:?}"
    );
    // ...and so must AUTH (redis-server 7.0.15 answers +OK).
    assert_eq!(
        one_line(&mut c, &resp(&[b"AUTH", b"default", b"whatever"]))?,
        "+OK\r\n"
    );
    Ok(())
}

#[test]
fn auth_with_too_many_arguments_is_a_syntax_error() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("s3cret".into())))?;
    let mut c = server.raw()?;
    // redis-server 7.0.15 (with or without requirepass): -ERR syntax error
    assert_eq!(
        one_line(&mut c, &resp(&[b"AUTH", b"default", b"s3cret", b"extra"]))?,
        "-ERR syntax error\r\n"
    );
    Ok(())
}
