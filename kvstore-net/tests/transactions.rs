//! `MULTI` / `EXEC` / `DISCARD`: exact replies, a transaction's reads seeing its own writes,
//! all its writes committed as one batch, and isolation from writers on other event loops.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};
use kvstore_net::{Frame, Limits};

#[test]
fn a_transaction_queues_then_runs_with_its_own_writes_visible() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+OK\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"-ERR EXEC without MULTI\r\n")?;
    c.check(&resp(&[b"DISCARD"]), b"-ERR DISCARD without MULTI\r\n")?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"MULTI"]),
        b"-ERR MULTI calls can not be nested\r\n",
    )?;
    let mut queued = Vec::new();
    for request in [
        &[&b"GET"[..], b"a"][..],
        &[b"SET", b"a", b"2"],
        &[b"MSET", b"b", b"3", b"c", b"4"],
        &[b"GET", b"a"],
        &[b"DEL", b"a", b"b", b"a", b"nope"],
        &[b"MGET", b"a", b"b", b"c"],
        &[b"EXISTS", b"a", b"c", b"c"],
        &[b"DBSIZE"],
        &[b"PING"],
    ] {
        queued.extend(resp(request));
    }
    c.check(&queued, &b"+QUEUED\r\n".repeat(9))?;
    c.check(
        &resp(&[b"EXEC"]),
        b"*9\r\n$1\r\n1\r\n+OK\r\n+OK\r\n$1\r\n2\r\n:2\r\n*3\r\n$-1\r\n$-1\r\n$1\r\n4\r\n:2\r\n:1\r\n+PONG\r\n",
    )?;
    let mut client = server.client()?;
    assert_eq!(client.get(b"a")?, None);
    assert_eq!(client.get(b"c")?, Some(b"4".to_vec()));
    assert_eq!(client.integer(&["DBSIZE"])?, 1);
    // All of a transaction's writes are one record.
    let before = server.handle.as_ref().map_or(0, |h| h.store().last_lsn());
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"x", b"1"]),
            resp(&[b"SET", b"y", b"2"]),
            resp(&[b"DEL", b"c"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n:1\r\n",
    )?;
    let after = server.handle.as_ref().map_or(0, |h| h.store().last_lsn());
    assert_eq!(after, before + 1);
    Ok(())
}

#[test]
fn a_refused_command_discards_the_transaction_at_exec() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+QUEUED\r\n")?;
    c.check(
        &resp(&[b"SET", b"a"]),
        b"-ERR wrong number of arguments for 'set' command\r\n",
    )?;
    c.check(
        &resp(&[b"NOSUCH"]),
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )?;
    c.check(
        &resp(&[b"INFO"]),
        b"-ERR Command not allowed inside a transaction\r\n",
    )?;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    c.check(&resp(&[b"GET", b"a"]), b"$-1\r\n")?;
    // DISCARD drops the queue; the connection is out of the transaction.
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+QUEUED\r\n")?;
    c.check(&resp(&[b"DISCARD"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"$-1\r\n")?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"*0\r\n")?;
    // Arguments are checked when the command runs, as Redis checks them: the wrong one
    // answers its error inside EXEC's reply, and the others run.
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"a", b"1", b"EX", b"5"]),
            resp(&[b"INCRBY", b"n", b"x"]),
            resp(&[b"MSET", b"b", b"2", b"c"]),
            resp(&[b"SET", b"d", b"4"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n-ERR syntax error\r\n\
          -ERR value is not an integer or out of range\r\n\
          -ERR wrong number of arguments for 'mset' command\r\n+OK\r\n",
    )?;
    c.check(
        &resp(&[b"MGET", b"a", b"b", b"d"]),
        b"*3\r\n$-1\r\n$-1\r\n$1\r\n4\r\n",
    )?;
    Ok(())
}

#[test]
fn a_replica_refuses_writes_in_a_transaction_and_serves_reads() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"+QUEUED\r\n")?;
    c.check(
        &resp(&[b"SET", b"a", b"1"]),
        b"-READONLY You can't write against a read only replica.\r\n",
    )?;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"a"]), b"+QUEUED\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"*1\r\n$-1\r\n")?;
    Ok(())
}

/// A transaction's reads see one state of the store: writers on the other event loop
/// (`MSET a i b i`, with increasing `i`) never land between them.
#[test]
fn transactions_are_isolated_from_writers_on_other_loops() -> TestResult {
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    let mut reader = server.client()?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = kvstore_net::Client::connect(&addr)?;
        std::thread::spawn(move || -> Result<u64, kvstore_net::Error> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let v = i.to_string();
                client.expect_ok(&["MSET", "a", &v, "b", &v])?;
            }
            Ok(i)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut checked = 0;
    while Instant::now() < deadline {
        let replies = [
            reader.command(&["MULTI"])?,
            reader.command(&["GET", "a"])?,
            reader.command(&["GET", "b"])?,
            reader.command(&["EXEC"])?,
        ];
        let Frame::Array(values) = &replies[3] else {
            return Err(format!("EXEC replied {:?}", replies[3]).into());
        };
        assert_eq!(
            values[0], values[1],
            "a transaction saw a and b from different writes"
        );
        checked += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().map_err(|_| "writer panicked")??;
    assert!(
        checked > 10 && writes > 10,
        "{checked} transactions, {writes} writes"
    );
    Ok(())
}

/// `max_reply_bytes` bounds what one reply may hold, an `EXEC`'s too: its `GET`s count as an
/// `MGET`'s values do (they did not, found in review).
#[test]
fn an_exec_reply_is_bounded_by_max_reply_bytes() -> TestResult {
    const LIMIT: usize = 1 << 20;
    let server = TestServer::start_with(|c| c.max_reply_bytes(LIMIT))?;
    let mut client = server.client()?;
    let value = vec![b'v'; 512 << 10];
    client.set(b"big", &value)?;
    // The same data through MGET: refused, as documented.
    let mget = client.command(&["MGET", "big", "big", "big", "big"])?;
    assert!(matches!(mget, Frame::Error(_)), "MGET replied {mget:?}");
    // Through EXEC: 64 GETs of 512 KiB = 32 MiB in one reply, 32x the limit.
    client.expect_ok(&["MULTI"])?;
    for _ in 0..64 {
        client.queue(&["GET", "big"]);
    }
    client.flush()?;
    for _ in 0..64 {
        assert_eq!(client.read_reply()?, Frame::Simple("QUEUED".into()));
    }
    let reply = client.command(&["EXEC"])?;
    let bytes: usize = match &reply {
        Frame::Array(items) => items
            .iter()
            .map(|f| match f {
                Frame::Bulk(b) => b.len(),
                _ => 0,
            })
            .sum(),
        _ => 0,
    };
    assert!(
        bytes <= LIMIT,
        "EXEC built a reply of {bytes} value bytes, over max_reply_bytes = {LIMIT}"
    );
    // Echoed messages count too: 4 PINGs and ECHOs of 512 KiB are 2 MiB.
    let message = vec![b'm'; 512 << 10];
    client.expect_ok(&["MULTI"])?;
    for name in [&b"PING"[..], b"ECHO", b"PING", b"ECHO"] {
        client.queue(&[name, &message[..]]);
    }
    client.flush()?;
    for _ in 0..4 {
        assert_eq!(client.read_reply()?, Frame::Simple("QUEUED".into()));
    }
    let reply = client.command(&["EXEC"])?;
    match &reply {
        Frame::Array(items) => {
            assert!(
                matches!(items[0], Frame::Bulk(_)),
                "first item: {:?}",
                items[0]
            );
            assert!(
                matches!(items[1], Frame::Bulk(_)),
                "second item: {:?}",
                items[1]
            );
            assert!(
                matches!(items[2], Frame::Error(_)),
                "third item is not refused"
            );
        }
        other => return Err(format!("EXEC replied {other:?}").into()),
    }
    Ok(())
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A transaction's queue is bounded by `max_request_bytes`, counting each argument's offset
/// too: empty arguments used to be free, and 100 `DEL`s of 100,000 empty keys each (300
/// counted bytes) made the server hold 80 MB (found in review).
#[test]
fn queued_transaction_memory_is_bounded_by_the_byte_limit() -> TestResult {
    const LIMIT: usize = 1 << 20;
    let server = TestServer::start_with(|c| {
        c.limits(Limits {
            max_request_bytes: LIMIT,
            ..Limits::default()
        })
    })?;
    let mut raw = server.raw()?;
    raw.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    const KEYS: usize = 100_000;
    let mut request = format!("*{}\r\n$3\r\nDEL\r\n", KEYS + 1).into_bytes();
    for _ in 0..KEYS {
        request.extend_from_slice(b"$0\r\n\r\n");
    }
    // 100,001 offsets of 8 bytes: 800 KB of the 1 MiB allowed.
    raw.check(&request, b"+QUEUED\r\n")?;
    std::thread::sleep(Duration::from_millis(100));
    let before = rss_bytes();
    let refused = format!("-ERR a transaction holds at most 65536 commands and {LIMIT} bytes\r\n");
    for _ in 0..100 {
        raw.check(&request, refused.as_bytes())?;
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "100 refused DELs grew the server by {} MiB",
        grown >> 20
    );
    raw.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )?;
    Ok(())
}

/// `DBSIZE` in a transaction does not cost a lookup per key the transaction wrote (it did:
/// an `MSET` of 50,000 keys and 5,000 `DBSIZE`s held the write gate and the event loop for
/// 27 s; found in review): a `PING` on another connection does not wait a second.
#[test]
fn dbsize_in_a_transaction_does_not_stall_the_server() -> TestResult {
    let server = TestServer::start()?;
    let mut raw = server.raw()?;
    raw.stream
        .set_read_timeout(Some(Duration::from_secs(120)))?;
    raw.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    let keys: Vec<Vec<u8>> = (0..50_000).map(|i| format!("k{i}").into_bytes()).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for key in &keys {
        mset.push(key);
        mset.push(b"v");
    }
    raw.check(&resp(&mset), b"+QUEUED\r\n")?;
    let dbsizes = resp(&[b"DBSIZE"]).repeat(5000);
    raw.check(&dbsizes, &b"+QUEUED\r\n".repeat(5000))?;
    raw.send(&resp(&[b"EXEC"]))?;
    std::thread::sleep(Duration::from_millis(200));
    let mut other = server.raw()?;
    other
        .stream
        .set_read_timeout(Some(Duration::from_secs(120)))?;
    let start = Instant::now();
    other.check(&resp(&[b"PING"]), b"+PONG\r\n")?;
    let waited = start.elapsed();
    // Drain EXEC's reply.
    let mut head = [0u8; 8];
    raw.stream.read_exact(&mut head)?;
    assert!(
        waited < Duration::from_secs(1),
        "a PING on another connection waited {waited:?} for one EXEC"
    );
    Ok(())
}

/// Errors inside an EXEC's reply count in `total_error_replies`, as Redis counts them.
#[test]
fn errors_inside_exec_are_counted() -> TestResult {
    let server = TestServer::start_with(|c| c.max_reply_bytes(1 << 10))?;
    let mut client = server.client()?;
    client.set(b"big", &[b'v'; 800])?;
    let errors = |c: &mut kvstore_net::Client| -> TestResult<u64> {
        Ok(common::info_field(c, "stats", "total_error_replies")?.parse()?)
    };
    let before = errors(&mut client)?;
    client.expect_ok(&["MULTI"])?;
    assert_eq!(
        client.command(&["MGET", "big", "big"])?,
        Frame::Simple("QUEUED".into())
    );
    let reply = client.command(&["EXEC"])?;
    let Frame::Array(items) = &reply else {
        return Err(format!("EXEC replied {reply:?}").into());
    };
    assert!(matches!(items[0], Frame::Error(_)), "{reply:?}");
    let after = errors(&mut client)?;
    assert_eq!(
        after - before,
        1,
        "EXEC answered an error; error replies counted: {}",
        after - before
    );
    Ok(())
}

/// In sync mode a transaction whose batch misses its quorum is durable on the master, as
/// any write that misses it: EXEC answers the error, which says so, and the writes are there
/// (no fake rollback).
#[test]
fn an_exec_that_misses_its_quorum_says_its_writes_are_durable() -> TestResult {
    // The only replica is an address where nothing listens: no write reaches its quorum.
    let server = TestServer::start_with(|c| {
        c.replicas(vec!["127.0.0.1:1".into()]).replication_mode(
            kvstore_net::ReplicationMode::Sync {
                quorum: 1,
                timeout: Duration::from_millis(200),
            },
        )
    })?;
    let mut client = server.client()?;
    client.expect_ok(&["MULTI"])?;
    assert_eq!(
        client.command(&["SET", "k", "v"])?,
        Frame::Simple("QUEUED".into())
    );
    let reply = client.command(&["EXEC"])?;
    let Frame::Error(message) = &reply else {
        return Err(format!("EXEC replied {reply:?}").into());
    };
    assert!(message.contains("durable on the master"), "{message}");
    assert_eq!(client.get(b"k")?, Some(b"v".to_vec()));
    Ok(())
}

/// Races a plain `DEL k` on a connection of loop 0 against another deletion of `k` on a
/// connection of loop 1, round after round for 3 s, each round after one `SET k`: `prepare`
/// runs on the other connection before both sides meet at a barrier, `delete` after it and
/// answers how many keys it deleted. Fails at the first round in which both counted `k`.
fn race_deletes(
    prepare: fn(&mut kvstore_net::Client),
    delete: fn(&mut kvstore_net::Client) -> Result<i64, kvstore_net::Error>,
) -> TestResult {
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    // Connections are dealt to the loops in turn: a to loop 0, b to loop 1.
    let mut a = kvstore_net::Client::connect(&addr)?;
    let mut b = kvstore_net::Client::connect(&addr)?;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let deadline = Instant::now() + Duration::from_secs(3);
    let (to_b, from_a) = std::sync::mpsc::channel::<bool>();
    let (to_a, from_b) = std::sync::mpsc::channel::<i64>();
    let other_side = {
        let barrier = barrier.clone();
        std::thread::spawn(move || -> Result<(), String> {
            while from_a.recv().unwrap_or(false) {
                prepare(&mut b);
                barrier.wait();
                let n = delete(&mut b).map_err(|e| e.to_string())?;
                let _ = to_a.send(n);
            }
            Ok(())
        })
    };
    let mut rounds = 0u64;
    let mut doubles = 0u64;
    while Instant::now() < deadline && doubles == 0 {
        a.set(b"k", b"v")?;
        to_b.send(true)?;
        barrier.wait();
        let plain = a.integer(&["DEL", "k"])?;
        let other = from_b.recv()?;
        assert!(other >= 0, "the other side failed");
        if plain + other != 1 {
            doubles += 1;
            eprintln!("round {rounds}: DEL -> {plain}, the other DEL -> {other}");
        }
        rounds += 1;
    }
    let _ = to_b.send(false);
    other_side.join().map_err(|_| "panicked")??;
    assert_eq!(
        doubles, 0,
        "after {rounds} rounds: one SET, two deletions counted"
    );
    Ok(())
}

/// A `DEL` in an event loop's group and an `EXEC` on another loop deleting one key: only one
/// of them counts it. The `DEL` used to count when prepared, outside the write gate, and an
/// `EXEC` committing in between made both count it. `DEL`s in a group are now planned at the
/// commit, with the gate held exclusively.
#[test]
fn a_grouped_del_and_an_exec_never_both_delete_one_key() -> TestResult {
    race_deletes(
        |b| {
            b.queue(&["MULTI"]);
            b.queue(&["DEL", "k"]);
        },
        |b| {
            b.queue(&["EXEC"]);
            b.flush()?;
            let mut last = Frame::Null;
            for _ in 0..3 {
                last = b.read_reply()?;
            }
            Ok(match last {
                Frame::Array(items) => match items.first() {
                    Some(Frame::Integer(n)) => *n,
                    _ => -100,
                },
                _ => -100,
            })
        },
    )
}

/// Two plain `DEL`s of one key on two event loops: one of them counts it. Their counts used
/// to be taken when each was prepared, before either committed, so both could count it.
#[test]
fn two_grouped_dels_on_two_loops_never_both_delete_one_key() -> TestResult {
    race_deletes(|_| {}, |b| b.integer(&["DEL", "k"]))
}

/// An `EXEC` refused by its argument count ends the transaction, as Redis's does: the next
/// write runs instead of being queued (it used to be queued, so the client's later writes
/// vanished into a transaction it believed over).
#[test]
fn an_exec_with_arguments_discards_the_transaction() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut other = server.client()?;
    other.set(b"w", b"0")?;
    c.check(&resp(&[b"WATCH", b"w"]), b"+OK\r\n")?;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+QUEUED\r\n")?;
    c.check(
        &resp(&[b"EXEC", b"now"]),
        b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    )?;
    c.check(&resp(&[b"SET", b"b", b"2"]), b"+OK\r\n")?;
    c.check(&resp(&[b"EXEC"]), b"-ERR EXEC without MULTI\r\n")?;
    assert_eq!(other.get(b"a")?, None);
    assert_eq!(other.get(b"b")?, Some(b"2".to_vec()));
    // The watch went with the transaction.
    other.set(b"w", b"1")?;
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"c", b"3"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n",
    )?;
    Ok(())
}
