//! A replica is never counted for a write it has not applied. The worker booked the applied
//! LSN a replica states in its HELLO reply as it was, without checking it against the
//! master's own log (acks within a session are checked against `sent`, see
//! `acks_contradicting_the_session.rs`). A replica (or anything answering at its address)
//! that claimed an applied LSN beyond the master's last LSN was then counted, up front, for
//! every future write: a sync write with quorum 1 returned Ok although no record ever reached
//! a replica, and the metrics reported it streaming with lag 0. Such a replica holds what this
//! master does not: it is now taken as diverged, as a conforming replica would report itself.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvstore_replication::{
    Ack, Error, Hello, HelloReply, ReplicaState, ReplicationMode, Replicator, Result, SharedRecord,
    SnapshotAck, SnapshotChunk, Transport,
};

/// Answers HELLO claiming LSN 1,000,000 applied; takes records and never acknowledges them.
struct Boastful {
    records_received: Arc<AtomicU64>,
}

impl Transport for Boastful {
    fn describe(&self) -> String {
        "boastful".into()
    }

    fn hello(&mut self, hello: &Hello) -> Result<HelloReply> {
        Ok(HelloReply {
            applied_lsn: 1_000_000,
            epoch: hello.epoch,
            snapshot_in_progress: None,
            replica_id: None,
        })
    }

    fn send_records(&mut self, records: &[SharedRecord]) -> Result<()> {
        self.records_received
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn recv_ack(&mut self, timeout: Duration) -> Result<Option<Ack>> {
        std::thread::sleep(timeout.min(Duration::from_millis(20)));
        Ok(None)
    }

    fn send_snapshot_chunk(&mut self, _chunk: &SnapshotChunk) -> Result<SnapshotAck> {
        Err(Error::transport("boastful", "no snapshots here"))
    }
}

#[test]
fn a_hello_reply_beyond_the_masters_log_acknowledges_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let master = fast().open(dir.path())?;
    let received = Arc::new(AtomicU64::new(0));
    let repl = Replicator::builder()
        .replica(Boastful {
            records_received: received.clone(),
        })
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::from_millis(300),
        })
        .ack_timeout(Duration::from_millis(200))
        .attach(&master)?;
    // The worker's HELLO is answered, and the claim refused.
    assert!(
        wait_until(Duration::from_secs(5), || repl.status().replicas[0].state
            == ReplicaState::Diverged),
        "the replica claiming more than the master holds was not taken as diverged: {:?}",
        repl.status().replicas[0]
    );
    let outcome = master.put(b"k", b"v");
    let status = repl.status();
    let replica = &status.replicas[0];
    assert!(
        matches!(
            outcome,
            Err(kvstore_core::Error::QuorumNotReached {
                acked: 0,
                required: 1,
                ..
            })
        ),
        "sync write with quorum 1 answered {outcome:?} though the only replica acknowledged no \
         record ({} records received by it); master_last_lsn={}, replica acked_lsn={}, \
         state={:?}, lag={:?}",
        received.load(Ordering::Relaxed),
        status.master_last_lsn,
        replica.acked_lsn,
        replica.state,
        replica.lag,
    );
    drop(repl);
    Ok(())
}
