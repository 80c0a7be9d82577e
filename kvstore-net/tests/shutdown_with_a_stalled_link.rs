//! A master's SIGTERM is not held up for long by a replica link that stalls (a peer that
//! accepts the connection and then says nothing, as a partitioned network or a frozen replica
//! does). The worker's pauses wake at shutdown and it gives up after the replicator's
//! shutdown timeout (5 s), but a HELLO sent into a stalled link used to wait for the
//! transport's 30 s I/O timeout first. HELLO's reply is now awaited for the ack timeout, and
//! a closing replicator interrupts a link still blocked past its shutdown timeout.

mod common;

use std::time::{Duration, Instant};

use common::{proxy, TestResult};

#[test]
fn sigterm_is_not_held_up_by_a_stalled_replica_link() -> TestResult {
    let root = tempfile::tempdir()?;
    let (_replica, proxy, mut master) = proxy::proxied_pair(root.path(), &[])?;

    // The link stalls: nothing more goes either way, nothing is closed. The idle master
    // re-HELLOs every heartbeat on a fresh connection; wait until it has sent one into the
    // stall, so the SIGTERM below lands while that HELLO waits for its reply.
    assert!(
        proxy.stall_until_spoken_into(),
        "the master never said HELLO into the stalled link"
    );
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &master.pid().to_string()])
        .status()?;
    assert!(status.success());
    let mut exited = None;
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(status) = master.child.try_wait()? {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    master.kill();
    drop(proxy);
    assert!(
        exited.is_some() && took < Duration::from_secs(8),
        "SIGTERM took {took:?} (exited: {exited:?}); the replicator's shutdown timeout is 5 s \
         but a stalled replica link held the master up"
    );
    Ok(())
}
