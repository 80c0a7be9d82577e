//! A replica applies a window of records at once with the per-record rules: copies are
//! ignored, a gap is answered with an applied LSN below the record (so the master resends),
//! and the records before the gap stay applied.

mod common;

use common::*;
use kvstore_core::WalRecord;
use kvstore_replication::{Ack, Error, ReplicaEndpoint};

#[test]
fn a_window_skips_copies_stops_at_a_gap_and_resumes() -> TestResult {
    let c = cluster(0, fast())?;
    for i in 0..100u32 {
        c.master.put(format!("k{:03}", i % 60), format!("v{i}"))?;
    }
    let records: Vec<WalRecord> = c.master.wal_since(0)?.collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let replica = ReplicaEndpoint::open(fast().open(dir.path())?)?;
    let session = replica.hello(&hello(1, 100))?.session;

    let acks = replica.apply_many(session, &records[..40])?;
    assert_eq!(acks.len(), 40);
    assert!(acks.iter().all(|a| a.applied_lsn == 40 && !a.is_gap()));

    // 31..=40 again (copies), 41..=50, then 52..=60 after a gap at 51.
    let mut window = records[30..50].to_vec();
    window.extend_from_slice(&records[51..60]);
    let acks = replica.apply_many(session, &window)?;
    assert_eq!(acks.len(), window.len());
    assert_eq!(
        acks[0],
        Ack {
            lsn: 31,
            applied_lsn: 50
        }
    );
    assert!(acks[..20].iter().all(|a| !a.is_gap()));
    assert!(acks[20..].iter().all(|a| a.is_gap() && a.applied_lsn == 50));
    assert_eq!(replica.applied_lsn(), 50);
    let stats = replica.stats();
    assert_eq!((stats.applied, stats.duplicates, stats.gaps), (50, 10, 9));

    // The master resends from 51: everything lands.
    let acks = replica.apply_many(session, &records[50..])?;
    assert!(acks.iter().all(|a| a.applied_lsn == 100));
    assert_same(&c.master, replica.store(), "windowed")?;
    Ok(())
}

#[test]
fn a_window_from_an_old_epoch_changes_nothing() -> TestResult {
    let c = cluster(0, fast())?;
    for i in 0..10u32 {
        c.master.put(format!("k{i}"), "v")?;
    }
    let records: Vec<WalRecord> = c.master.wal_since(0)?.collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let replica = ReplicaEndpoint::open(fast().open(dir.path())?)?;
    let old = replica.hello(&hello(1, 10))?.session;
    let current = replica.hello(&hello(2, 10))?.session;
    assert!(matches!(
        replica.apply_many(old, &records),
        Err(Error::StaleEpoch {
            master_epoch: 1,
            replica_epoch: 2
        })
    ));
    assert_eq!(replica.applied_lsn(), 0);
    assert!(replica.apply_many::<WalRecord>(current, &[])?.is_empty());
    assert_eq!(replica.apply_many(current, &records)?.len(), 10);
    assert_same(&c.master, replica.store(), "epoch")?;
    Ok(())
}
