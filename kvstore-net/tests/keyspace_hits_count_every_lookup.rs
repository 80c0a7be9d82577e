//! `INFO stats`' `keyspace_hits` / `keyspace_misses` count every key lookup of a read, as in
//! Redis: `MGET` and `EXISTS` count one hit or miss per key, and a `GET` run by `EXEC` counts
//! as a plain `GET` does (checked against redis-server 7.0.15). Only a plain `GET` used to
//! count, so a client that read with `MGET` or in transactions saw a 0 % hit ratio.

mod common;

use common::{info_field, TestResult, TestServer};
use kvstore_net::{Client, Frame};

fn hits_misses(c: &mut Client) -> TestResult<(u64, u64)> {
    Ok((
        info_field(c, "stats", "keyspace_hits")?.parse()?,
        info_field(c, "stats", "keyspace_misses")?.parse()?,
    ))
}

#[test]
fn mget_counts_a_hit_and_a_miss_per_key() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    c.set(b"present", b"1")?;
    let before = hits_misses(&mut c)?;
    let reply = c.command(&["MGET", "present", "absent"])?;
    assert_eq!(
        reply,
        Frame::Array(vec![Frame::Bulk(b"1".to_vec()), Frame::Null])
    );
    let after = hits_misses(&mut c)?;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "MGET of one present and one absent key: (hits, misses) went {before:?} -> {after:?}"
    );
    Ok(())
}

#[test]
fn get_inside_exec_counts_as_a_get() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    c.set(b"present", b"1")?;
    let before = hits_misses(&mut c)?;
    c.command(&["MULTI"])?;
    c.command(&["GET", "present"])?;
    c.command(&["GET", "absent"])?;
    let reply = c.command(&["EXEC"])?;
    assert_eq!(
        reply,
        Frame::Array(vec![Frame::Bulk(b"1".to_vec()), Frame::Null])
    );
    let after = hits_misses(&mut c)?;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "EXEC of GET present, GET absent: (hits, misses) went {before:?} -> {after:?}"
    );
    Ok(())
}

#[test]
fn exists_counts_a_hit_and_a_miss_per_key() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    c.set(b"present", b"1")?;
    let before = hits_misses(&mut c)?;
    assert_eq!(
        c.command(&["EXISTS", "present", "absent", "present"])?,
        Frame::Integer(2)
    );
    let after = hits_misses(&mut c)?;
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 1));
    Ok(())
}
