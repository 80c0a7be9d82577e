//! Write latency vs quorum: 5 in-process replicas, each message delayed by U[0, 100 ms];
//! for k = 1..5, the mean latency of sync writes compared with the k-th order statistic of
//! 5 uniform delays, k/(n+1) * 100 ms.
//!
//! `cargo run --release -p kvstore-replication --example quorum_latency [writes_per_k]`

use std::time::{Duration, Instant};

use kvstore_core::{Options, SyncPolicy};
use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const REPLICAS: usize = 5;
    let writes: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50);
    let opts = || Options::new().sync_policy(SyncPolicy::Never);
    println!("| k | measured mean (ms) | measured p50 (ms) | model k/(n+1)*100 (ms) |");
    println!("|---|---|---|---|");
    for quorum in 1..=REPLICAS {
        let master_dir = tempfile::tempdir()?;
        let master = opts().open(master_dir.path())?;
        let mut dirs = Vec::new();
        let mut builder = Replicator::builder()
            .mode(ReplicationMode::Sync {
                quorum,
                timeout: Duration::from_secs(10),
            })
            .ack_timeout(Duration::from_secs(2));
        for i in 0..REPLICAS {
            let dir = tempfile::tempdir()?;
            let replica = InProcessReplica::open(format!("r{i}"), dir.path(), opts())?;
            replica
                .faults()
                .delay_uniform(Duration::ZERO, Duration::from_millis(100));
            builder = builder.replica(replica.transport());
            dirs.push(dir);
        }
        let repl = builder.attach(&master)?;
        let mut latencies = Vec::with_capacity(writes);
        for i in 0..writes {
            let start = Instant::now();
            master.put(format!("key-{i:012}"), [0u8; 100])?;
            latencies.push(start.elapsed());
            // Let the slower replicas settle so each write sees fresh, independent delays
            // (the model assumes an idle link per write).
            let lsn = master.last_lsn();
            repl.wait_for(lsn, REPLICAS, Duration::from_secs(2));
        }
        latencies.sort();
        let mean = latencies.iter().sum::<Duration>() / writes as u32;
        let p50 = latencies[writes / 2];
        let model = quorum as f64 / (REPLICAS as f64 + 1.0) * 100.0;
        println!(
            "| {quorum} | {:.1} | {:.1} | {model:.1} |",
            mean.as_secs_f64() * 1e3,
            p50.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
