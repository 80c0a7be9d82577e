//! Error replies for malformed arguments are Redis's for the same input (DESIGN §5). Each
//! expectation below is what redis-server 7.0.15 answers.

mod common;

use common::{resp, Raw, TestResult, TestServer};

/// Sends `request` and returns the one-line reply it gets.
fn one_line(c: &mut Raw, request: &[u8]) -> TestResult<String> {
    c.send(request)?;
    c.read_lines(1)
}

/// Redis reads `COUNT` as a signed number and refuses one below 1 with a syntax error;
/// cmd/scan.rs reads it with `next_u64`, so a negative count gets the "not an integer"
/// error instead.
#[test]
fn scan_with_a_negative_count_is_a_syntax_error() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    assert_eq!(
        one_line(&mut c, &resp(&[b"SCAN", b"0", b"COUNT", b"0"]))?,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        one_line(&mut c, &resp(&[b"SCAN", b"0", b"COUNT", b"-1"]))?,
        "-ERR syntax error\r\n"
    );
    Ok(())
}

/// Redis reads WAIT's timeout with `getTimeoutFromObjectOrReply`, whose error names the
/// timeout; cmd/wait.rs uses the generic integer error.
#[test]
fn wait_with_a_non_numeric_timeout_names_the_timeout() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    assert_eq!(
        one_line(&mut c, &resp(&[b"WAIT", b"0", b"soon"]))?,
        "-ERR timeout is not an integer or out of range\r\n"
    );
    Ok(())
}

/// Redis quotes an unknown subcommand as the client typed it; cmd/client.rs lowercases it
/// first (`to_ascii_lowercase` on the subcommand, then formats that).
#[test]
fn client_unknown_subcommand_is_quoted_as_typed() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    assert_eq!(
        one_line(&mut c, &resp(&[b"CLIENT", b"FOO"]))?,
        "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"
    );
    Ok(())
}
