//! A small harness for profiling async replication (callgrind, perf): `n` puts of 16-byte keys
//! and 100-byte values with `SyncPolicy::Never` on a master with `replicas` in-process replicas
//! (0 = unreplicated), then waits until every replica caught up. Prints the elapsed times.
//! A third argument `always` runs master and replicas with `SyncPolicy::Always` instead.
//!
//! `cargo run --release -p kvstore-replication --example async_profile [n] [replicas] [always]`

use std::time::{Duration, Instant};

use kvstore_core::{Options, SyncPolicy};
use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let replicas: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let policy = match args.next().as_deref() {
        Some("always") => SyncPolicy::Always,
        _ => SyncPolicy::Never,
    };
    let opts = || Options::new().sync_policy(policy);
    let master_dir = tempfile::tempdir()?;
    let master = opts().open(master_dir.path())?;
    let mut dirs = Vec::new();
    let mut builder = Replicator::builder().mode(ReplicationMode::Async);
    for i in 0..replicas {
        let dir = tempfile::tempdir()?;
        let replica = InProcessReplica::open(format!("r{i}"), dir.path(), opts())?;
        builder = builder.replica(replica.transport());
        dirs.push(dir);
    }
    let replication = (replicas > 0)
        .then(|| builder.attach(&master))
        .transpose()?;
    let value = [0x5au8; 100];
    let start = Instant::now();
    for i in 0..n {
        let mut key = *b"key:0000\0\0\0\0\0\0\0\0";
        key[8..].copy_from_slice(&i.to_be_bytes());
        master.put(key, value)?;
    }
    let writes = start.elapsed();
    if let Some(replication) = &replication {
        let want = master.last_lsn();
        if replication.wait_for(want, replicas, Duration::from_secs(120)) < replicas {
            return Err("replicas did not catch up".into());
        }
    }
    println!(
        "{n} puts with {replicas} replicas: writes {writes:?} ({:.0} puts/s), caught up after {:?}",
        n as f64 / writes.as_secs_f64(),
        start.elapsed()
    );
    if let Some(replication) = &replication {
        for r in replication.status().replicas {
            println!(
                "  {}: queue overflows {}, sends ok {}, retries {}",
                r.name, r.queue_overflows, r.sends_ok, r.retries
            );
        }
    }
    Ok(())
}
