//! Error replies with Redis's text as well as its code (clients only show these, but the
//! contract is Redis's replies). Observed on redis-server 7.0.15:
//!
//! - `HELLO 3` before AUTH (requirepass set):
//!   -NOAUTH HELLO must be called with the client already authenticated, otherwise the
//!   HELLO AUTH <user> <pass> option can be used … (kvstore wrote `HELLO <proto> AUTH`)
//! - `WAIT 0 0` on a replica: Redis's message goes on with "Please also note that since
//!   Redis 4.0 …" (kvstore stopped after the first sentence)
//! - `COMMAND FOO`: -ERR unknown subcommand 'FOO'. Try COMMAND HELP. (kvstore: -ERR syntax
//!   error)

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn hello_before_auth_has_redis_text() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("pw".into())))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"HELLO", b"3"]),
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP \
protocol version at the same time\r\n",
    )
}

#[test]
fn wait_on_a_replica_has_redis_text() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.send(&resp(&[b"WAIT", b"0", b"0"]))?;
    assert_eq!(
        c.read_lines(1)?,
        "-ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 \
if a replica is configured to be writable (which is not the default) writes to replicas are \
just local and are not propagated.\r\n"
    );
    Ok(())
}

#[test]
fn unknown_command_subcommand_has_redis_text() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.send(&resp(&[b"COMMAND", b"FOO"]))?;
    assert_eq!(
        c.read_lines(1)?,
        "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"
    );
    Ok(())
}
