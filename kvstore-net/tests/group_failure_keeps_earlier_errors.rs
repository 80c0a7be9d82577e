//! A commit group that fails as a whole (here: too few replicas, `--min-replicas-to-write`)
//! leaves the replies of members answered with an error of their own before any commit (an
//! `INCR` with no key) as they were, as Redis answers an arity error first, and counts each
//! once in `INFO stats`. They used to be replaced by the group's error and counted twice.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{resp, Raw, TestResult, TestServer};

fn no_replicas() -> TestResult<TestServer> {
    TestServer::start_with(|c| {
        c.replicas(vec!["127.0.0.1:9".to_string()])
            .min_replicas_to_write(1)
    })
}

fn stat(c: &mut Raw, name: &str) -> TestResult<u64> {
    c.send(&resp(&[b"INFO", b"stats"]))?;
    c.stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(2).position(|w| w == b"\r\n") {
            let len: usize = String::from_utf8_lossy(&got[1..end]).parse()?;
            if got.len() >= end + 2 + len + 2 {
                break;
            }
        }
        let n = c.stream.read(&mut buf)?;
        if n == 0 {
            return Err("closed".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&got).into_owned();
    let line = body
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .ok_or("no such stat")?;
    Ok(line[name.len() + 1..].trim().parse()?)
}

/// Redis checks the arity before `min-replicas-to-write`; so did this server before `INCR`
/// joined the group (and still does for `SET`).
#[test]
fn arity_errors_of_grouped_commands_survive_a_refused_group() -> TestResult {
    let server = no_replicas()?;
    let mut c = server.raw()?;
    for (request, name) in [
        (resp(&[b"INCR"]), "incr"),
        (resp(&[b"SETNX", b"a"]), "setnx"),
        (resp(&[b"GETDEL", b"a", b"b"]), "getdel"),
    ] {
        c.send(&request)?;
        let got = c.read_lines(1)?;
        assert_eq!(
            got,
            format!("-ERR wrong number of arguments for '{name}' command\r\n")
        );
    }
    // A pipelined arity error after a refused INCR keeps its own reply too.
    c.send(&[resp(&[b"INCR", b"a"]), resp(&[b"INCR"])].concat())?;
    let got = c.read_lines(2)?;
    assert!(
        got.ends_with("-ERR wrong number of arguments for 'incr' command\r\n"),
        "{got:?}"
    );
    Ok(())
}

/// One error reply, one count.
#[test]
fn an_error_reply_in_a_refused_group_is_counted_once() -> TestResult {
    let server = no_replicas()?;
    let mut c = server.raw()?;
    let before = stat(&mut c, "total_error_replies")?;
    c.send(&resp(&[b"INCR"]))?;
    let got = c.read_lines(1)?;
    assert!(got.starts_with('-'), "{got:?}");
    let after = stat(&mut c, "total_error_replies")?;
    assert_eq!(
        after - before,
        1,
        "one error reply counted {} times",
        after - before
    );
    Ok(())
}
