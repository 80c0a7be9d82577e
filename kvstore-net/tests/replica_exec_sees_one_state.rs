//! On a replica, REPLICATE records land while clients run EXEC. They take the node's write
//! gate shared and EXEC takes it exclusively, so one EXEC sees one state of a key
//! throughout: its GET, EXISTS, TYPE, TTL and STRLEN agree (the transaction's view also
//! answers from the key it read last, which is sound only because the store holds still).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestResult, TestServer};
use kvstore_net::{Client, Frame};

#[test]
fn one_exec_on_a_replica_sees_one_state_of_a_replicated_key() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            let mut m = Client::connect(&addr).map_err(|e| e.to_string())?;
            let hello = m
                .command(&["REPLICATE", "HELLO", "127.0.0.1:7000", "3", "0"])
                .map_err(|e| e.to_string())?;
            if !matches!(hello, Frame::Array(_)) {
                return Err(format!("HELLO answered {hello:?}"));
            }
            let mut lsn = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // 64 records per round trip: PUT k, DELETE k, alternately.
                for _ in 0..64 {
                    lsn += 1;
                    let l = lsn.to_string();
                    if lsn % 2 == 1 {
                        m.queue(&["REPLICATE", "PUT", &l, "k", &l]);
                    } else {
                        m.queue(&["REPLICATE", "DELETE", &l, "k"]);
                    }
                }
                m.flush().map_err(|e| e.to_string())?;
                for _ in 0..64 {
                    let reply = m.read_reply().map_err(|e| e.to_string())?;
                    if matches!(reply, Frame::Error(_)) {
                        return Err(format!("REPLICATE answered {reply:?}"));
                    }
                }
            }
            Ok(lsn)
        })
    };
    let mut c = Client::connect(&addr)?;
    let started = Instant::now();
    let mut execs = 0;
    while started.elapsed() < Duration::from_secs(2) {
        c.expect_ok(&["MULTI"])?;
        for request in [
            &["GET", "k"][..],
            &["EXISTS", "k"],
            &["TYPE", "k"],
            &["TTL", "k"],
            &["STRLEN", "k"],
            &["EXISTS", "k"],
            &["GET", "k"],
        ] {
            assert_eq!(c.command(request)?, Frame::Simple("QUEUED".into()));
        }
        let Frame::Array(replies) = c.command(&["EXEC"])? else {
            panic!("EXEC did not answer an array");
        };
        let present = !matches!(replies[0], Frame::Null);
        let n = i64::from(present);
        let len = match &replies[0] {
            Frame::Bulk(v) => v.len() as i64,
            _ => 0,
        };
        let expected = vec![
            replies[0].clone(),
            Frame::Integer(n),
            Frame::Simple(if present { "string" } else { "none" }.into()),
            Frame::Integer(if present { -1 } else { -2 }),
            Frame::Integer(len),
            Frame::Integer(n),
            replies[0].clone(),
        ];
        assert_eq!(replies, expected, "one EXEC saw two states of k");
        execs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let records = feeder.join().map_err(|_| "feeder panicked")??;
    assert!(
        records > 64 && execs > 10,
        "{records} records, {execs} EXECs"
    );
    Ok(())
}
