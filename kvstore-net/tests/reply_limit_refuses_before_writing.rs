//! A read-modify-write command whose reply (the old value) is over `max_reply_bytes` is
//! refused before it writes: `GETDEL` used to delete the value it refused to return, and
//! `GETSET` / `SET … GET` to overwrite it, answering an error for a write that was committed.

mod common;

use common::{TestResult, TestServer};
use kvstore_core::SyncPolicy;
use kvstore_net::Frame;

fn server() -> TestResult<TestServer> {
    TestServer::start_with(|c| c.max_reply_bytes(1000).sync_policy(SyncPolicy::Never))
}

#[test]
fn getdel_refused_by_the_reply_limit_does_not_delete() -> TestResult {
    let server = server()?;
    let mut c = server.client()?;
    let value = vec![b'v'; 2000];
    c.set(b"big", &value)?;
    // GET of the same value is answered in full: the limit is about gathered replies.
    assert_eq!(c.get(b"big")?, Some(value.clone()));
    let reply = c.command(&[&b"GETDEL"[..], b"big"])?;
    let after = c.get(b"big")?;
    assert!(
        !matches!(reply, Frame::Error(_)) || after.is_some(),
        "GETDEL answered {reply:?} and the value is gone: {after:?}"
    );
    Ok(())
}

#[test]
fn getset_refused_by_the_reply_limit_does_not_overwrite() -> TestResult {
    let server = server()?;
    let mut c = server.client()?;
    let value = vec![b'v'; 2000];
    c.set(b"big", &value)?;
    let reply = c.command(&[&b"GETSET"[..], b"big", b"new"])?;
    let after = c.get(b"big")?;
    assert!(
        !matches!(reply, Frame::Error(_)) || after.as_deref() == Some(&value[..]),
        "GETSET answered {reply:?} but overwrote the value with {:?}",
        after.map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    Ok(())
}

#[test]
fn set_get_refused_by_the_reply_limit_does_not_overwrite() -> TestResult {
    let server = server()?;
    let mut c = server.client()?;
    let value = vec![b'v'; 2000];
    c.set(b"big", &value)?;
    let reply = c.command(&[&b"SET"[..], b"big", b"new", b"GET"])?;
    let after = c.get(b"big")?;
    assert!(
        !matches!(reply, Frame::Error(_)) || after.as_deref() == Some(&value[..]),
        "SET … GET answered {reply:?} but overwrote the value with {:?}",
        after.map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    Ok(())
}

/// The same inside a transaction: a `GET` uses up the reply budget, then `GETDEL` answers
/// the limit's error inside `EXEC`'s reply, and the key is deleted all the same.
#[test]
fn getdel_in_exec_refused_by_the_reply_limit_does_not_delete() -> TestResult {
    let server = server()?;
    let mut c = server.client()?;
    let value = vec![b'v'; 600];
    c.set(b"k", &value)?;
    c.expect_ok(&["MULTI"])?;
    assert_eq!(c.command(&["GET", "k"])?, Frame::Simple("QUEUED".into()));
    assert_eq!(c.command(&["GETDEL", "k"])?, Frame::Simple("QUEUED".into()));
    let reply = c.command(&["EXEC"])?;
    let after = c.get(b"k")?;
    let getdel_failed =
        matches!(&reply, Frame::Array(items) if matches!(items.get(1), Some(Frame::Error(_))));
    assert!(
        !getdel_failed || after.is_some(),
        "EXEC answered [GET: <600 bytes>, GETDEL: {:?}]: GETDEL's reply is an error, yet the key is gone",
        match &reply { Frame::Array(items) => items.get(1).cloned(), other => Some(other.clone()) }
    );
    Ok(())
}
