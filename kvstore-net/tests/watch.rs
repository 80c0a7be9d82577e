//! `WATCH` / `UNWATCH`: exact replies, a transaction that runs only while its watched keys
//! are as they were, and check-and-set increments from clients on two event loops that
//! lose no update.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};
use kvstore_net::{Client, Frame};

#[test]
fn a_watched_key_written_by_another_client_aborts_exec() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut other = server.client()?;
    other.set(b"k", b"1")?;
    c.check(&resp(&[b"WATCH", b"k", b"absent"]), b"+OK\r\n")?;
    other.set(b"k", b"2")?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"k", b"3"]),
            resp(&[b"SET", b"x", b"1"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*-1\r\n",
    )?;
    assert_eq!(other.get(b"k")?, Some(b"2".to_vec()));
    assert_eq!(other.get(b"x")?, None, "an aborted EXEC wrote");
    // EXEC forgot the watched keys: the next transaction runs.
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"k", b"3"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n",
    )?;
    assert_eq!(other.get(b"k")?, Some(b"3".to_vec()));
    Ok(())
}

#[test]
fn unchanged_keys_let_exec_run_and_every_kind_of_change_aborts_it() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut other = server.client()?;
    other.set(b"k", b"v")?;
    let exec_sets_y = [
        resp(&[b"MULTI"]),
        resp(&[b"SET", b"y", b"1"]),
        resp(&[b"EXEC"]),
    ]
    .concat();
    let ran = b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n";
    let aborted = b"+OK\r\n+QUEUED\r\n*-1\r\n";

    // Nothing written: runs. A key watched twice keeps its first state.
    c.check(&resp(&[b"WATCH", b"k", b"k", b"none"]), b"+OK\r\n")?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(&exec_sets_y, ran)?;

    // The same bytes written again count as a write.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.set(b"k", b"v")?;
    c.check(&exec_sets_y, aborted)?;

    // Deleted.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    assert!(other.del(b"k")?);
    c.check(&exec_sets_y, aborted)?;

    // Appeared.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.set(b"k", b"back")?;
    c.check(&exec_sets_y, aborted)?;

    // Written by this very connection before MULTI, as Redis counts it.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"k", b"mine"]), b"+OK\r\n")?;
    c.check(&exec_sets_y, aborted)?;

    // Written by an MSET among other keys, and by another transaction.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.expect_ok(&["MSET", "a", "1", "k", "2"])?;
    c.check(&exec_sets_y, aborted)?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.queue(&["MULTI"]);
    other.queue(&["DEL", "k"]);
    other.queue(&["EXEC"]);
    other.flush()?;
    for _ in 0..3 {
        other.read_reply()?;
    }
    c.check(&exec_sets_y, aborted)?;

    // UNWATCH and DISCARD forget the watched keys.
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(&resp(&[b"UNWATCH"]), b"+OK\r\n")?;
    other.set(b"k", b"again")?;
    c.check(&exec_sets_y, ran)?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(
        &[resp(&[b"MULTI"]), resp(&[b"DISCARD"])].concat(),
        b"+OK\r\n+OK\r\n",
    )?;
    other.set(b"k", b"once more")?;
    c.check(&exec_sets_y, ran)?;

    // A key written and deleted again between WATCH and EXEC has no value at either, but it
    // changed in between: aborted, as in Redis.
    c.check(&resp(&[b"WATCH", b"gone"]), b"+OK\r\n")?;
    other.set(b"gone", b"briefly")?;
    assert!(other.del(b"gone")?);
    c.check(&exec_sets_y, aborted)?;

    // A key without a value is left alone by writes of other keys.
    c.check(&resp(&[b"WATCH", b"gone"]), b"+OK\r\n")?;
    other.set(b"unrelated", b"1")?;
    c.check(&exec_sets_y, ran)?;
    Ok(())
}

#[test]
fn watch_inside_multi_is_refused_without_aborting_and_unwatch_is_queued() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"WATCH"]),
        b"-ERR wrong number of arguments for 'watch' command\r\n",
    )?;
    c.check(
        &resp(&[b"UNWATCH", b"k"]),
        b"-ERR wrong number of arguments for 'unwatch' command\r\n",
    )?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"WATCH", b"k"]),
            resp(&[b"SET", b"k", b"1"]),
            resp(&[b"UNWATCH"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n",
    )?;
    // An EXEC discarded for a refused command forgets the watched keys as well.
    let mut other = server.client()?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"k"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n-ERR wrong number of arguments for 'set' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    other.set(b"k", b"2")?;
    c.check(
        &[resp(&[b"MULTI"]), resp(&[b"GET", b"k"]), resp(&[b"EXEC"])].concat(),
        b"+OK\r\n+QUEUED\r\n*1\r\n$1\r\n2\r\n",
    )?;
    Ok(())
}

#[test]
fn an_aborted_exec_is_null_in_resp3_and_watch_needs_auth() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("secret".into())))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"WATCH", b"k"]),
        b"-NOAUTH Authentication required.\r\n",
    )?;
    // HELLO's reply is a map of server facts; the PING after it marks its end.
    c.send(
        &[
            resp(&[b"HELLO", b"3", b"AUTH", b"default", b"secret"]),
            resp(&[b"PING"]),
        ]
        .concat(),
    )?;
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        let mut chunk = [0u8; 4096];
        let n = c.stream.read(&mut chunk)?;
        if n == 0 {
            return Err("connection closed after HELLO 3".into());
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    let mut other = server.client()?;
    other.auth("secret")?;
    c.check(&resp(&[b"WATCH", b"k"]), b"+OK\r\n")?;
    other.set(b"k", b"1")?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"k", b"2"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n_\r\n",
    )?;
    Ok(())
}

#[test]
fn watched_keys_are_bounded_per_connection() -> TestResult {
    let server = TestServer::start_with(|c| {
        c.limits(kvstore_net::Limits {
            max_request_bytes: 4 << 10,
            ..kvstore_net::Limits::default()
        })
    })?;
    let mut c = server.client()?;
    let key = vec![b'k'; 1000];
    let mut refused = None;
    for i in 0..10u8 {
        let mut key = key.clone();
        key[0] = b'a' + i;
        match c.command(&[&b"WATCH"[..], &key])? {
            Frame::Simple(ok) if ok == "OK" => {}
            Frame::Error(e) => {
                refused = Some((i, e));
                break;
            }
            other => return Err(format!("WATCH answered {other:?}").into()),
        }
    }
    let (at, error) = refused.ok_or("ten 1000-byte keys watched under a 4 KiB limit")?;
    assert_eq!(at, 3, "refused at key {at}: {error}");
    assert!(error.contains("UNWATCH first"), "{error}");
    // Three 1,064-byte entries fit under 4 KiB, a fourth does not. Watching an already
    // watched key costs nothing; UNWATCH frees the room.
    c.expect_ok(&[&b"WATCH"[..], &[&b"a"[..], &key[1..]].concat()])?;
    c.expect_ok(&["UNWATCH"])?;
    c.expect_ok(&[&b"WATCH"[..], &[&b"z"[..], &key[1..]].concat()])?;
    Ok(())
}

/// Check-and-set increments of one counter from clients spread over two event loops, each
/// retrying when its EXEC is aborted: without the watch, increments would be lost.
#[test]
fn check_and_set_increments_from_two_loops_lose_no_update() -> TestResult {
    const CLIENTS: usize = 4;
    const INCREMENTS: u64 = 150;
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    Client::connect(&addr)?.set(b"counter", b"0")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || -> Result<u64, String> {
                let mut c = Client::connect(&addr).map_err(|e| e.to_string())?;
                let mut aborted = 0;
                for _ in 0..INCREMENTS {
                    loop {
                        if Instant::now() > deadline {
                            return Err("out of time".into());
                        }
                        c.expect_ok(&["WATCH", "counter"])
                            .map_err(|e| e.to_string())?;
                        let value = c.get(b"counter").map_err(|e| e.to_string())?;
                        let n: u64 = value
                            .and_then(|v| String::from_utf8(v).ok())
                            .and_then(|v| v.parse().ok())
                            .ok_or("counter is not a number")?;
                        c.queue(&["MULTI"]);
                        c.queue(&["SET".to_string(), "counter".into(), (n + 1).to_string()]);
                        c.queue(&["EXEC"]);
                        c.flush().map_err(|e| e.to_string())?;
                        c.read_reply().map_err(|e| e.to_string())?;
                        c.read_reply().map_err(|e| e.to_string())?;
                        match c.read_reply().map_err(|e| e.to_string())? {
                            Frame::Array(_) => break,
                            Frame::NullArray => aborted += 1,
                            other => return Err(format!("EXEC answered {other:?}")),
                        }
                    }
                }
                Ok(aborted)
            })
        })
        .collect();
    let mut aborted = 0;
    for worker in workers {
        aborted += worker.join().map_err(|_| "a worker panicked")??;
    }
    let total = Client::connect(&addr)?.get(b"counter")?;
    assert_eq!(
        total,
        Some((CLIENTS as u64 * INCREMENTS).to_string().into_bytes()),
        "lost updates ({aborted} EXECs were aborted and retried)"
    );
    Ok(())
}
