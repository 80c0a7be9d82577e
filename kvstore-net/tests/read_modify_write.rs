//! Commands that read before they write: `INCR`/`DECR`/`INCRBY`/`DECRBY`, `SETNX`, `MSETNX`,
//! `GETSET`, `GETDEL`, `APPEND` and `SET … NX|XX|GET`. Exact replies (compared byte for byte
//! with Redis 7.0's for the same requests), and concurrent increments and `SETNX` claims
//! from clients on two event loops, and on a sync-mode master's threads, that lose nothing.

mod common;

use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};
use kvstore_net::{Client, Frame, ReplicationMode};

#[test]
fn replies_are_exactly_redis_ones() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let cases: &[(&[&[u8]], &[u8])] = &[
        (&[b"INCR", b"c"], b":1\r\n"),
        (&[b"INCR", b"c"], b":2\r\n"),
        (&[b"DECR", b"c"], b":1\r\n"),
        (&[b"INCRBY", b"c", b"10"], b":11\r\n"),
        (&[b"DECRBY", b"c", b"3"], b":8\r\n"),
        (
            &[b"INCRBY", b"c", b"x"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            &[b"INCRBY", b"c", b"03"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (&[b"SET", b"s", b"abc"], b"+OK\r\n"),
        (
            &[b"INCR", b"s"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (&[b"SET", b"big", b"9223372036854775807"], b"+OK\r\n"),
        (
            &[b"INCR", b"big"],
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (
            &[b"DECRBY", b"c", b"-9223372036854775808"],
            b"-ERR decrement would overflow\r\n",
        ),
        (&[b"SET", b"sp", b" 1"], b"+OK\r\n"),
        (
            &[b"INCR", b"sp"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (&[b"SETNX", b"n", b"1"], b":1\r\n"),
        (&[b"SETNX", b"n", b"2"], b":0\r\n"),
        (&[b"GET", b"n"], b"$1\r\n1\r\n"),
        (&[b"MSETNX", b"m1", b"a", b"m2", b"b"], b":1\r\n"),
        (&[b"MSETNX", b"m2", b"x", b"m3", b"y"], b":0\r\n"),
        (&[b"GET", b"m3"], b"$-1\r\n"),
        (
            &[b"MSETNX", b"m1"],
            b"-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (&[b"GETSET", b"n", b"3"], b"$1\r\n1\r\n"),
        (&[b"GETSET", b"nokey", b"v"], b"$-1\r\n"),
        (&[b"GETDEL", b"n"], b"$1\r\n3\r\n"),
        (&[b"GETDEL", b"n"], b"$-1\r\n"),
        (&[b"APPEND", b"ap", b"hello"], b":5\r\n"),
        (&[b"APPEND", b"ap", b" world"], b":11\r\n"),
        (&[b"GET", b"ap"], b"$11\r\nhello world\r\n"),
        (&[b"SET", b"k", b"v", b"NX"], b"+OK\r\n"),
        (&[b"SET", b"k", b"v2", b"NX"], b"$-1\r\n"),
        (&[b"SET", b"k", b"v3", b"XX"], b"+OK\r\n"),
        (&[b"SET", b"nk", b"v", b"XX"], b"$-1\r\n"),
        (&[b"SET", b"k", b"v4", b"GET"], b"$2\r\nv3\r\n"),
        (&[b"SET", b"k", b"v5", b"NX", b"GET"], b"$2\r\nv4\r\n"),
        (&[b"SET", b"k2", b"v", b"xx", b"get"], b"$-1\r\n"),
        (
            &[b"SET", b"k", b"v", b"NX", b"XX"],
            b"-ERR syntax error\r\n",
        ),
        // Keys here never expire: expiry options are refused.
        (
            &[b"SET", b"k", b"v", b"EX", b"10"],
            b"-ERR syntax error\r\n",
        ),
        (
            &[b"INCR"],
            b"-ERR wrong number of arguments for 'incr' command\r\n",
        ),
        (
            &[b"GETDEL"],
            b"-ERR wrong number of arguments for 'getdel' command\r\n",
        ),
    ];
    for (request, reply) in cases {
        c.check(&resp(request), reply)?;
    }
    // Inside a transaction, each sees the writes before it; a wrong argument is an error in
    // the reply, and the rest runs.
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"INCR", b"t"]),
            resp(&[b"INCRBY", b"t", b"5"]),
            resp(&[b"SET", b"t2", b"x", b"NX"]),
            resp(&[b"SET", b"t2", b"y", b"NX"]),
            resp(&[b"GETSET", b"t2", b"z"]),
            resp(&[b"APPEND", b"t2", b"!"]),
            resp(&[b"GETDEL", b"t2"]),
            resp(&[b"INCRBY", b"t", b"x"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        &[
            &b"+OK\r\n"[..],
            &b"+QUEUED\r\n".repeat(8),
            b"*8\r\n:1\r\n:6\r\n+OK\r\n$-1\r\n$1\r\nx\r\n:2\r\n$2\r\nz!\r\n\
              -ERR value is not an integer or out of range\r\n",
        ]
        .concat(),
    )?;
    c.check(&resp(&[b"GET", b"t"]), b"$1\r\n6\r\n")?;
    Ok(())
}

#[test]
fn a_replica_refuses_them() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut c = server.raw()?;
    for request in [
        &[&b"INCR"[..], b"c"][..],
        &[b"SETNX", b"k", b"v"],
        &[b"SET", b"k", b"v", b"NX"],
        &[b"APPEND", b"k", b"v"],
    ] {
        c.check(
            &resp(request),
            b"-READONLY You can't write against a read only replica.\r\n",
        )?;
    }
    Ok(())
}

/// Runs `clients` threads of `work` against `addr`, each with its own connection.
fn concurrently<T: Send + 'static>(
    addr: &str,
    clients: usize,
    work: impl Fn(usize, &mut Client) -> Result<T, kvstore_net::Error> + Send + Sync + 'static,
) -> TestResult<Vec<T>> {
    let work = std::sync::Arc::new(work);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (addr, work) = (addr.to_string(), work.clone());
            std::thread::spawn(move || -> Result<T, String> {
                let mut client = Client::connect(&addr).map_err(|e| e.to_string())?;
                client
                    .set_timeout(Some(Duration::from_secs(20)))
                    .map_err(|e| e.to_string())?;
                work(i, &mut client).map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut results = Vec::new();
    for thread in threads {
        results.push(thread.join().map_err(|_| "a client panicked")??);
    }
    Ok(results)
}

/// Increments from clients on two event loops, mixed with plain `SET`s of other keys that
/// wait in the loops' commit groups: every increment counts once.
#[test]
fn increments_from_two_loops_lose_nothing() -> TestResult {
    const CLIENTS: usize = 4;
    const EACH: i64 = 300;
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    let replies = concurrently(&addr, CLIENTS, |i, c| {
        let mut last = 0;
        for n in 0..EACH {
            // A pipelined SET joins the loop's group just before the INCR.
            c.queue(&["SET".to_string(), format!("other{i}"), n.to_string()]);
            c.queue(&["INCRBY", "counter", "1"]);
            c.flush()?;
            c.read_reply()?;
            match c.read_reply()? {
                Frame::Integer(v) => last = last.max(v),
                other => {
                    return Err(kvstore_net::Error::Reply(format!(
                        "INCRBY answered {other:?}"
                    )))
                }
            }
        }
        Ok(last)
    })?;
    let total = CLIENTS as i64 * EACH;
    let mut client = server.client()?;
    assert_eq!(
        client.get(b"counter")?,
        Some(total.to_string().into_bytes())
    );
    assert_eq!(replies.iter().max(), Some(&total));
    Ok(())
}

/// Many clients race to `SETNX` (and `SET … NX`) one key per round: exactly one wins each.
#[test]
fn exactly_one_client_claims_each_key() -> TestResult {
    const CLIENTS: usize = 6;
    const ROUNDS: usize = 200;
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let wins = concurrently(&server.addr(), CLIENTS, |i, c| {
        let mut wins = 0;
        for round in 0..ROUNDS {
            let key = format!("lock{round}");
            let won = if i % 2 == 0 {
                c.command(&["SETNX", key.as_str(), "me"])? == Frame::Integer(1)
            } else {
                c.command(&["SET", key.as_str(), "me", "NX"])? == Frame::Simple("OK".into())
            };
            wins += usize::from(won);
        }
        Ok(wins)
    })?;
    assert_eq!(wins.iter().sum::<usize>(), ROUNDS, "{wins:?}");
    Ok(())
}

/// In sync mode every write runs on a thread of its own and waits for its quorum; increments
/// still count once, on the master and on its replica.
#[test]
fn increments_in_sync_mode_count_once_on_master_and_replica() -> TestResult {
    const CLIENTS: usize = 4;
    const EACH: i64 = 50;
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let master = TestServer::start_with(|c| {
        c.replicas(vec![replica.addr()])
            .replication_mode(ReplicationMode::Sync {
                quorum: 1,
                timeout: Duration::from_secs(10),
            })
    })?;
    concurrently(&master.addr(), CLIENTS, |_, c| {
        for _ in 0..EACH {
            c.command(&["INCR", "counter"])?;
        }
        Ok(())
    })?;
    let total = (CLIENTS as i64 * EACH).to_string().into_bytes();
    assert_eq!(master.client()?.get(b"counter")?, Some(total.clone()));
    // Each INCR waited for the replica's acknowledgement.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut on_replica = None;
    while Instant::now() < deadline {
        on_replica = replica.client()?.get(b"counter")?;
        if on_replica.as_ref() == Some(&total) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(on_replica, Some(total));
    Ok(())
}

/// Pipelined increments of one counter from clients on two event loops: the loops plan a
/// round's `INCR`s together, in order, at the commit. Every reply is a distinct count, each
/// connection's rise, and together they are exactly 1..=total.
#[test]
fn pipelined_increments_get_every_count_exactly_once() -> TestResult {
    const CLIENTS: usize = 4;
    const EACH: usize = 250;
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let replies = concurrently(&server.addr(), CLIENTS, |_, c| {
        let mut seen = Vec::with_capacity(EACH);
        for _ in 0..EACH {
            c.queue(&["INCR", "counter"]);
        }
        c.flush()?;
        for _ in 0..EACH {
            match c.read_reply()? {
                Frame::Integer(n) => seen.push(n),
                other => {
                    return Err(kvstore_net::Error::Reply(format!(
                        "INCR answered {other:?}"
                    )))
                }
            }
        }
        Ok(seen)
    })?;
    for seen in &replies {
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }
    let mut all: Vec<i64> = replies.into_iter().flatten().collect();
    all.sort_unstable();
    let total = (CLIENTS * EACH) as i64;
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    Ok(())
}
