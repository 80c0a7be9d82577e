//! A replica whose link stalls while the master is idle stops counting as healthy within
//! about the ack timeout, so `--min-replicas-to-write` refuses writes that would never reach
//! it. The master re-HELLOs an idle replica every heartbeat on a fresh connection; a HELLO
//! sent into a stalled link used to wait 30 s for its reply (`DEFAULT_IO_TIMEOUT`), where a
//! record sent into it is given up after the 5 s ack timeout; HELLO now has that timeout too.

mod common;

use std::time::{Duration, Instant};

use common::{info_field, proxy, TestResult};

#[test]
fn a_stalled_idle_replica_stops_counting_as_healthy() -> TestResult {
    let root = tempfile::tempdir()?;
    let (_replica, proxy, master) =
        proxy::proxied_pair(root.path(), &["--min-replicas-to-write", "1"])?;
    let mut client = master.client()?;

    // The link stalls (nothing is closed). Wait until the idle master's heartbeat HELLO went
    // into it.
    assert!(
        proxy.stall_until_spoken_into(),
        "the master never said HELLO into the stalled link"
    );
    let stalled_at = Instant::now();
    // A write the replica cannot get: admitted, the replica still counts as healthy.
    let first = client.command(&["SET", "during-stall", "1"])?;
    // Twice the ack timeout (5 s) after the stall began.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stalled_at.elapsed()));
    let line = info_field(&mut client, "replication", "replica0")?;
    let healthy = info_field(&mut client, "replication", "healthy_replicas")?;
    let later = client.command(&["SET", "during-stall", "2"])?;
    println!(
        "first write: {first}; after {:?}: {line}; healthy_replicas={healthy}; write: {later}",
        stalled_at.elapsed()
    );
    drop(proxy);
    assert!(
        healthy == "0" && later.to_string().contains("NOREPLICAS"),
        "{:?} after the link stalled, the replica that has received nothing since is still \
         counted healthy ({line}, healthy_replicas={healthy}) and --min-replicas-to-write 1 \
         admits writes (SET answered {later})",
        stalled_at.elapsed()
    );
    Ok(())
}
