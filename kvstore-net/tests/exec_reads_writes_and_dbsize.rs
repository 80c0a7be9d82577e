//! One EXEC that reads keys from the store (GET, EXISTS, TYPE, STRLEN, MSETNX's and SET
//! NX|XX's existence checks) and then writes, deletes, rewrites and deletes them again, with
//! DBSIZE in between: replies as Redis 7.0 gives them. The transaction's view answers from
//! its own writes, from the key it read last, and from the store, and counts the keys its
//! writes add.

mod common;

use common::{TestResult, TestServer};
use kvstore_net::Frame;

fn bulk(value: &str) -> Frame {
    Frame::Bulk(value.as_bytes().to_vec())
}

#[test]
fn reads_writes_and_dbsize_inside_one_exec() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    c.set(b"a", b"1")?;
    c.set(b"b", b"2")?;
    let queue: &[(&[&str], Frame)] = &[
        (&["GET", "a"], bulk("1")),
        (&["DEL", "a"], Frame::Integer(1)),
        (&["EXISTS", "a"], Frame::Integer(0)),
        (&["DBSIZE"], Frame::Integer(1)),
        (&["SETNX", "a", "2"], Frame::Integer(1)),
        (&["DBSIZE"], Frame::Integer(2)),
        (&["GETDEL", "a"], bulk("2")),
        (&["GETDEL", "a"], Frame::Null),
        (&["DBSIZE"], Frame::Integer(1)),
        (&["EXISTS", "c"], Frame::Integer(0)),
        (&["MSETNX", "a", "1", "c", "3"], Frame::Integer(1)),
        (&["MSETNX", "c", "4", "d", "4"], Frame::Integer(0)),
        (&["DBSIZE"], Frame::Integer(3)),
        (&["SET", "d", "x", "XX"], Frame::Null),
        (&["SET", "d", "x", "NX", "GET"], Frame::Null),
        (&["SET", "b", "y", "XX", "GET"], bulk("2")),
        (&["TYPE", "zz"], Frame::Simple("none".into())),
        (&["STRLEN", "zz"], Frame::Integer(0)),
        (&["INCR", "zz"], Frame::Integer(1)),
        (&["DBSIZE"], Frame::Integer(5)),
        (
            &["DEL", "a", "b", "c", "d", "zz", "nope", "a"],
            Frame::Integer(5),
        ),
        (&["DBSIZE"], Frame::Integer(0)),
        (&["GET", "nope"], Frame::Null),
        (&["SET", "nope", "v"], Frame::ok()),
        (&["DBSIZE"], Frame::Integer(1)),
        (&["DEL", "nope"], Frame::Integer(1)),
        (&["APPEND", "b", "z"], Frame::Integer(1)),
        (&["DBSIZE"], Frame::Integer(1)),
    ];
    c.expect_ok(&["MULTI"])?;
    for (request, _) in queue {
        assert_eq!(c.command(request)?, Frame::Simple("QUEUED".into()));
    }
    let expected: Vec<Frame> = queue.iter().map(|(_, reply)| reply.clone()).collect();
    assert_eq!(c.command(&["EXEC"])?, Frame::Array(expected));
    assert_eq!(c.integer(&["DBSIZE"])?, 1);
    assert_eq!(c.integer(&["EXISTS", "a", "c", "d", "zz", "nope"])?, 0);
    assert_eq!(c.get(b"b")?, Some(b"z".to_vec()));
    Ok(())
}

/// A key written by one EXEC, then by a second EXEC after it (a new view): each EXEC's batch
/// holds its final state, and the second's reads see the first's commit.
#[test]
fn consecutive_execs_each_commit_their_final_state() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    for round in 1..=3i64 {
        c.expect_ok(&["MULTI"])?;
        for request in [
            &["EXISTS", "k"][..],
            &["INCR", "k"],
            &["INCR", "k"],
            &["DEL", "k"],
            &["INCRBY", "k", "5"],
            &["DBSIZE"],
        ] {
            assert_eq!(c.command(request)?, Frame::Simple("QUEUED".into()));
        }
        let previous = if round == 1 { 0 } else { 1 };
        let first = if round == 1 { 1 } else { 6 };
        assert_eq!(
            c.command(&["EXEC"])?,
            Frame::Array(vec![
                Frame::Integer(previous),
                Frame::Integer(first),
                Frame::Integer(first + 1),
                Frame::Integer(1),
                Frame::Integer(5),
                Frame::Integer(1),
            ]),
            "round {round}"
        );
        assert_eq!(c.get(b"k")?, Some(b"5".to_vec()));
    }
    Ok(())
}
