//! A record in the master's log that can no longer be read (bit rot in an old segment) is the
//! master's problem, not the replica's: a worker catching up through it falls back to a full
//! resync from a snapshot (which reads live values, not the log) instead of failing the
//! replica's session and retrying the same unreadable record forever.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn an_unreadable_log_record_is_bypassed_by_a_snapshot() -> TestResult {
    let c = cluster(1, fast().segment_bytes(4096).auto_compaction(false))?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .ack_timeout(Duration::from_millis(200))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .probe_interval(Duration::from_millis(20))
        .attach(&c.master)?;
    c.master.put(b"seed", b"s")?;
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(5)));
    c.replicas[0].faults().partition();
    // The first segment fills with values that are all overwritten later, so the only copy
    // the store still needs lives in later segments.
    for round in 0..3u32 {
        for i in 0..100u32 {
            c.master
                .put(format!("k{i:03}"), format!("round{round}-{i:060}"))?;
        }
    }
    let first = std::fs::read_dir(c.master_dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .min()
        .ok_or("no segment")?;
    let mut file = std::fs::OpenOptions::new().write(true).open(&first)?;
    file.seek(SeekFrom::Start(1500))?;
    file.write_all(b"bit rot")?;
    drop(file);
    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(10)),
        "{:?}",
        repl.status()
    );
    assert!(repl.status().replicas[0].resyncs >= 1);
    drop(repl);
    assert_all_same(&c)
}
