//! Before AUTH, as Redis, the server checks that the command exists and its arity *before* it
//! checks authentication (Redis's server.c processCommand: commandCheckExistence,
//! commandCheckArity, then authRequired). redis-server 7.0.15 with requirepass, observed:
//!
//!   NOSUCH            -> -ERR unknown command 'NOSUCH', with args beginning with:
//!   GET               -> -ERR wrong number of arguments for 'get' command
//!   SET k             -> -ERR wrong number of arguments for 'set' command
//!   GET k             -> -NOAUTH Authentication required.
//!
//! kvstore used to answer -NOAUTH to all four.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn unknown_command_and_wrong_arity_win_over_noauth_as_in_redis() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("pw".into())))?;
    let mut c = server.raw()?;
    let mut req = resp(&[b"NOSUCH"]);
    req.extend(resp(&[b"GET"]));
    req.extend(resp(&[b"SET", b"k"]));
    req.extend(resp(&[b"GET", b"k"]));
    c.send(&req)?;
    assert_eq!(
        c.read_lines(4)?,
        "-ERR unknown command 'NOSUCH', with args beginning with: \r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         -ERR wrong number of arguments for 'set' command\r\n\
         -NOAUTH Authentication required.\r\n"
    );
    Ok(())
}
