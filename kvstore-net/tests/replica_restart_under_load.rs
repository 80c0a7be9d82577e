//! A replica SIGKILLed and restarted while clients keep writing to the master catches up
//! from the master's WAL: in the end all three DIGESTs are equal.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{converged_digest, Cluster, TestResult};

#[test]
fn killed_replica_catches_up_under_load() -> TestResult {
    let mut cluster = Cluster::start(2, &["--fsync", "everysec"], &["--fsync", "everysec"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (addr, stop) = (cluster.master.addr.clone(), stop.clone());
            std::thread::spawn(move || -> Result<usize, String> {
                let mut client = kvstore_net::Client::connect(&addr).map_err(|e| e.to_string())?;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}:{}", n % 500);
                    client
                        .set(key.as_bytes(), format!("{n}").as_bytes())
                        .map_err(|e| e.to_string())?;
                    if n % 7 == 0 {
                        client
                            .del(format!("w{w}:{}", n % 300).as_bytes())
                            .map_err(|e| e.to_string())?;
                    }
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    cluster.replicas[0].kill();
    std::thread::sleep(Duration::from_millis(600));
    cluster.replicas[0].restart()?;
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.join().map_err(|_| "writer panicked")??;
    }
    assert!(written > 100, "only {written} writes under load");
    let mut master = cluster.master.client()?;
    assert_eq!(master.integer(&["WAIT", "2", "15000"])?, 2);
    converged_digest(&cluster.addrs(), Duration::from_secs(10))?;
    let mut replica = cluster.replicas[0].client()?;
    let applied = common::info_field(&mut replica, "replication", "applied_lsn")?;
    assert_eq!(
        applied,
        common::info_field(&mut master, "replication", "master_lsn")?
    );
    Ok(())
}
