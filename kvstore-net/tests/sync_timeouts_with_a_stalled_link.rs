//! In sync mode a write whose replica link has stalled gets its quorum error within
//! `--sync-timeout-ms` ("then the write fails", kvstore-net/README.md). A read-modify-write
//! command (`INCR` …), a `DEL` or an `EXEC` used to wait for its quorum while holding the
//! node's write gate exclusively, so concurrent ones waited out each other's whole timeout:
//! the k-th of them answered after k timeouts, and so did a plain `SET` queued behind them.
//! They now commit under the gate and wait for replicas after letting it go; and so do blind
//! writes (`SET`, `PUT`, `MSET`, pipelined groups), which held the gate shared through their
//! wait, so that an `INCR` sent while a `SET` waited answered after both timeouts.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{proxy, TestResult};

const SYNC_TIMEOUT_MS: u64 = 500;

#[test]
fn concurrent_sync_writes_fail_within_the_sync_timeout_when_the_link_stalls() -> TestResult {
    let root = tempfile::tempdir()?;
    let timeout = SYNC_TIMEOUT_MS.to_string();
    let (_replica, proxy, master) = proxy::proxied_pair(
        root.path(),
        &["--replication-mode", "sync", "--sync-timeout-ms", &timeout],
    )?;
    // Healthy link: an INCR is acknowledged at once.
    let mut client = master.client()?;
    assert_eq!(
        client.command(&["INCR", "warmup"])?,
        kvstore_net::Frame::Integer(1)
    );

    proxy.stall_both();

    // Six clients write at once: four INCRs, a DEL and a plain SET.
    let writers = 6;
    let barrier = Arc::new(Barrier::new(writers));
    let mut threads = Vec::new();
    for i in 0..writers {
        let addr = master.addr.clone();
        let barrier = barrier.clone();
        threads.push(std::thread::spawn(move || -> (String, String, Duration) {
            let mut c = match kvstore_net::Client::connect(&addr) {
                Ok(c) => c,
                Err(e) => return (format!("connect {i}"), e.to_string(), Duration::ZERO),
            };
            let args: Vec<String> = match i {
                4 => vec!["DEL".into(), "k1".into()],
                5 => vec!["SET".into(), "plain".into(), "v".into()],
                _ => vec!["INCR".into(), format!("counter{i}")],
            };
            barrier.wait();
            let started = Instant::now();
            let reply = c
                .command(&args)
                .map(|f| f.to_string())
                .unwrap_or_else(|e| e.to_string());
            (args.join(" "), reply, started.elapsed())
        }));
    }
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    drop(proxy);
    let mut late = Vec::new();
    for (cmd, reply, took) in &results {
        println!("{cmd}: {reply} after {took:?}");
        // The documented bound, with generous slack for a loaded machine.
        if *took > Duration::from_millis(SYNC_TIMEOUT_MS * 2 + 500) {
            late.push(format!("{cmd} answered after {took:?} ({reply})"));
        }
    }

    assert!(
        late.is_empty(),
        "with --sync-timeout-ms {SYNC_TIMEOUT_MS} and a stalled replica link, writes answered \
         far later than the timeout: {late:#?}"
    );
    Ok(())
}

#[test]
fn an_incr_after_a_waiting_set_fails_within_the_sync_timeout() -> TestResult {
    const SYNC_TIMEOUT_MS: u64 = 2_000;
    let root = tempfile::tempdir()?;
    let timeout = SYNC_TIMEOUT_MS.to_string();
    let (_replica, proxy, master) = proxy::proxied_pair(
        root.path(),
        &["--replication-mode", "sync", "--sync-timeout-ms", &timeout],
    )?;
    proxy.stall_both();

    // The SET is sent first and is surely inside its quorum wait when the INCR comes.

    let addr = master.addr.clone();
    let set = std::thread::spawn(move || -> (String, Duration) {
        let started = Instant::now();
        let reply = kvstore_net::Client::connect(&addr)
            .and_then(|mut c| c.command(&["SET", "plain", "v"]))
            .map(|f| f.to_string())
            .unwrap_or_else(|e| e.to_string());
        (reply, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut incr = master.client()?;
    let started = Instant::now();
    let reply = incr
        .command(&["INCR", "counter"])
        .map(|f| f.to_string())
        .unwrap_or_else(|e| e.to_string());
    let took = started.elapsed();
    let (set_reply, set_took) = set.join().unwrap();
    drop(proxy);
    println!("SET: {set_reply} after {set_took:?}");
    println!("INCR: {reply} after {took:?}");
    assert!(
        took < Duration::from_millis(SYNC_TIMEOUT_MS * 3 / 2),
        "with --sync-timeout-ms {SYNC_TIMEOUT_MS} and a stalled link, an INCR sent while a SET \
         waited for its quorum answered only after {took:?} ({reply}): it waited out the \
         SET's timeout for the write gate, then its own"
    );
    Ok(())
}
