//! An `APPEND` that would make a value larger than the store's limit (64 MiB) is that
//! command's own error inside `EXEC`'s reply, and the transaction's other commands still run,
//! as in Redis (which answers `*2\r\n:1\r\n-ERR string exceeds maximum allowed size
//! (proto-max-bulk-len)\r\n`). It used to be found only when the batch was committed, and
//! `EXEC` answered one error with nothing applied.

mod common;

use std::time::Duration;

use common::{TestResult, TestServer};
use kvstore_core::SyncPolicy;
use kvstore_net::Frame;

#[test]
fn an_append_over_the_value_limit_is_its_own_error_inside_exec() -> TestResult {
    let server = TestServer::start_with(|c| c.sync_policy(SyncPolicy::Never))?;
    let mut c = server.client()?;
    c.set_timeout(Some(Duration::from_secs(60)))?;
    let half = vec![b'x'; 40 << 20];
    c.set(b"big", &half)?;
    c.expect_ok(&["MULTI"])?;
    assert_eq!(
        c.command(&["INCR", "counter"])?,
        Frame::Simple("QUEUED".into())
    );
    assert_eq!(
        c.command(&[&b"APPEND"[..], b"big", &half[..]])?,
        Frame::Simple("QUEUED".into())
    );
    let reply = c.command(&["EXEC"])?;
    assert!(
        matches!(&reply, Frame::Array(items) if items.len() == 2
            && items[0] == Frame::Integer(1)
            && matches!(items[1], Frame::Error(_))),
        "EXEC answered {reply:?}; counter is now {:?}",
        c.get(b"counter")?
    );
    Ok(())
}
