//! A node promoted after it refused (as diverged) a newer master's HELLO takes an epoch
//! above that master's, or two masters would share one epoch and neither be fenced.
//!
//! `epoch::promote` promises "an epoch one above any it has seen, so that replicas of the old
//! master accept it and the old master is refused from then on" (also README: REPLICAOF NO
//! ONE promotes "with an epoch higher than any it has seen"). `ReplicaEndpoint::hello` used
//! to refuse a diverged master before it stored the master's higher epoch, so an old master
//! demoted with async writes its replicas never got (diverged from the new master) and then
//! promoted again comes back with the *same* epoch as the new master.

mod common;

use common::*;
use kvstore_core::KvStore;
use kvstore_replication::{epoch, timeline, Error, Hello, ReplicaEndpoint, Timeline};

fn hello_from(id: &str, epoch: u64, master: &KvStore, timeline: &Timeline) -> Hello {
    Hello {
        master_id: id.into(),
        epoch,
        master_last_lsn: master.last_lsn(),
        force_resync: false,
        timeline: timeline.clone(),
    }
}

/// A replica of `master` (whose timeline is `tl`) that applied its first `upto` records.
fn follower(
    dir: &std::path::Path,
    master: &KvStore,
    tl: &Timeline,
    upto: u64,
) -> Result<ReplicaEndpoint, Box<dyn std::error::Error>> {
    let endpoint = ReplicaEndpoint::open(fast().open(dir)?)?;
    let mut hello = hello_from("A", 1, master, tl);
    hello.master_last_lsn = upto;
    let session = endpoint.hello(&hello)?.session;
    for record in master.wal_since(0)? {
        let record = record?;
        if record.lsn > upto {
            break;
        }
        endpoint.apply(session, &record)?;
    }
    assert_eq!(endpoint.applied_lsn(), upto);
    Ok(endpoint)
}

#[test]
fn an_old_master_promoted_again_gets_an_epoch_above_the_new_masters() -> TestResult {
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    // A: master at epoch 1; 110 writes, of which its replicas get only the first 100.
    let a = fast().open(a_dir.path())?;
    assert_eq!(epoch::master_epoch(a_dir.path(), None)?, 1);
    let tl_a = timeline::begin_incarnation(&a, 1)?;
    for i in 0..110u32 {
        a.put(format!("k{i}"), b"a")?;
    }
    let b = follower(b_dir.path(), &a, &tl_a, 100)?;
    let c = follower(c_dir.path(), &a, &tl_a, 100)?;

    // A fails over to B (REPLICAOF NO ONE on B): epoch 2. C follows B.
    let b_store = b.store().clone();
    drop(b);
    let b_epoch = epoch::promote(b_dir.path())?;
    assert_eq!(b_epoch, 2);
    let tl_b = timeline::begin_incarnation(&b_store, b_epoch)?;
    c.hello(&hello_from("B", b_epoch, &b_store, &tl_b))?;

    // A is demoted (REPLICAOF B): B's HELLO is refused, A holds 10 records B lacks.
    let a_replica = ReplicaEndpoint::open(a.clone())?;
    let refused = a_replica.hello(&hello_from("B", b_epoch, &b_store, &tl_b));
    assert!(
        matches!(refused, Err(Error::Diverged { .. })),
        "{refused:?}"
    );
    drop(a_replica);

    // A is promoted again (REPLICAOF NO ONE on A). It has seen epoch 2.
    let a_epoch = epoch::promote(a_dir.path())?;
    let tl_a2 = timeline::begin_incarnation(&a, a_epoch)?;
    // C (still at LSN 100) is reached by both masters.
    let c_took_a = c.hello(&hello_from("A", a_epoch, &a, &tl_a2));
    let b_after = c.hello(&hello_from("B", b_epoch, &b_store, &tl_b));
    assert!(
        a_epoch > b_epoch,
        "A saw epoch {b_epoch} in a HELLO it refused, then was promoted to epoch {a_epoch}: \
         two masters share one epoch (C took A: {:?}; then took B again: {:?})",
        c_took_a.as_ref().map(|o| o.session.epoch()),
        b_after.as_ref().map(|o| o.session.epoch()),
    );
    assert!(
        matches!(b_after, Err(Error::StaleEpoch { .. })),
        "once C follows the newer master A, B must be fenced: {b_after:?}"
    );
    Ok(())
}
