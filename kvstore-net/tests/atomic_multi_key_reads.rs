//! Multi-key reads (`MGET`, `EXISTS`) never see half of an atomic write (`MSET`, a multi-key
//! `DEL`, or an `EXEC` of several writes) committed on another I/O thread: Redis documents
//! that no client sees some of an MSET's keys updated and others not, and an EXEC's
//! commands as never interleaved with another client's request. (Each read used to look the
//! keys up one at a time, so a commit could land in between: 5 torn replies in about 0.2 s.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestResult, TestServer};
use kvstore_net::{Client, Frame};

/// Runs `write(i)` on a connection of loop 1 while loop 0 asks `MGET a b` for `secs` seconds;
/// returns the torn replies seen (a != b) and how many reads were made.
fn torn_mgets(
    write: impl Fn(&mut Client, u64) -> Result<(), kvstore_net::Error> + Send + 'static,
) -> TestResult<(Vec<Frame>, u64)> {
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    // Connections are dealt to the loops in turn: the reader to loop 0, the writer to loop 1.
    let mut reader = Client::connect(&addr)?;
    reader.set_timeout(Some(Duration::from_secs(10)))?;
    let mut writer_client = Client::connect(&addr)?;
    writer_client.set_timeout(Some(Duration::from_secs(10)))?;
    writer_client.expect_ok(&["MSET", "a", "0", "b", "0"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<u64, kvstore_net::Error> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                write(&mut writer_client, i)?;
            }
            Ok(i)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut torn = Vec::new();
    let mut reads = 0u64;
    while Instant::now() < deadline && torn.len() < 5 {
        let reply = reader.command(&["MGET", "a", "b"])?;
        reads += 1;
        if let Frame::Array(values) = &reply {
            if values.len() == 2 && values[0] != values[1] {
                torn.push(reply.clone());
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().map_err(|_| "writer panicked")??;
    assert!(writes > 10, "only {writes} writes");
    Ok((torn, reads))
}

#[test]
fn mget_never_sees_half_of_an_mset_on_another_loop() -> TestResult {
    let (torn, reads) = torn_mgets(|c, i| {
        let v = i.to_string();
        c.expect_ok(&["MSET", "a", &v, "b", &v])
    })?;
    assert!(
        torn.is_empty(),
        "{} of {reads} MGET a b saw half of an MSET a i b i: {torn:?}",
        torn.len()
    );
    Ok(())
}

#[test]
fn mget_never_sees_half_of_an_exec_on_another_loop() -> TestResult {
    let (torn, reads) = torn_mgets(|c, i| {
        let v = i.to_string();
        c.queue(&["MULTI"]);
        c.queue(&["SET", "a", &v]);
        c.queue(&["SET", "b", &v]);
        c.queue(&["EXEC"]);
        c.flush()?;
        for _ in 0..4 {
            c.read_reply()?;
        }
        Ok(())
    })?;
    assert!(
        torn.is_empty(),
        "{} of {reads} MGET a b saw half of an EXEC (SET a i, SET b i): {torn:?}",
        torn.len()
    );
    Ok(())
}

#[test]
fn exists_never_sees_half_of_an_mset_or_a_del_on_another_loop() -> TestResult {
    let server = TestServer::start_with(|c| c.io_threads(2))?;
    let addr = server.addr();
    let mut reader = Client::connect(&addr)?;
    let mut writer_client = Client::connect(&addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<u64, kvstore_net::Error> {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                writer_client.expect_ok(&["MSET", "a", "1", "b", "1"])?;
                writer_client.integer(&["DEL", "a", "b"])?;
                rounds += 1;
            }
            Ok(rounds)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut torn = 0u64;
    let mut reads = 0u64;
    while Instant::now() < deadline && torn < 5 {
        let n = reader.integer(&["EXISTS", "a", "b"])?;
        reads += 1;
        if n == 1 {
            torn += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().map_err(|_| "writer panicked")??;
    assert!(rounds > 10, "only {rounds} write rounds");
    assert_eq!(
        torn, 0,
        "{torn} of {reads} EXISTS a b counted one key of two"
    );
    Ok(())
}
