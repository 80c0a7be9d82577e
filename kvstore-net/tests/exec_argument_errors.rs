//! Queued commands are checked only for name and arity, as Redis checks them; their
//! arguments are checked when `EXEC` runs them. `PING` (arity -1) with two arguments used to
//! be answered like `PING msg` inside `EXEC`, where Redis 7 answers `-ERR wrong number of
//! arguments for 'ping' command` (as this server does outside a transaction).

mod common;

use std::time::Duration;

use common::{TestResult, TestServer};
use kvstore_net::Frame;

#[test]
fn ping_with_two_arguments_inside_exec_is_an_arity_error() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    c.set_timeout(Some(Duration::from_secs(5)))?;
    let arity = Frame::Error("ERR wrong number of arguments for 'ping' command".into());
    assert_eq!(c.command(&["PING", "a", "b"])?, arity);
    c.expect_ok(&["MULTI"])?;
    assert_eq!(
        c.command(&["PING", "a", "b"])?,
        Frame::Simple("QUEUED".into())
    );
    // redis-server 7: *1\r\n-ERR wrong number of arguments for 'ping' command\r\n
    assert_eq!(c.command(&["EXEC"])?, Frame::Array(vec![arity]));
    Ok(())
}
