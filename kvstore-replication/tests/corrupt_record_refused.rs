//! Records travel from the master as its log bytes with their checksums. A replica verifies
//! them before writing anything: a window holding a damaged record is refused whole, the store
//! is left as it was, and the intact records apply once they are sent again.

mod common;

use common::*;
use kvstore_core::{EncodedWalRecord, WalRecord};
use kvstore_replication::{Error, Hello, ReplicaEndpoint};

fn hello(master_last_lsn: u64) -> Hello {
    Hello {
        master_id: "m".into(),
        epoch: 1,
        master_last_lsn,
        force_resync: false,
        timeline: Default::default(),
    }
}

type Records = Vec<EncodedWalRecord>;

/// A master with `puts` keys written, and its records as the commit hook hands them on.
fn master_with(puts: u32) -> Result<(Cluster, Records), Box<dyn std::error::Error>> {
    let c = cluster(0, fast())?;
    for i in 0..puts {
        c.master.put(format!("k{i:02}"), format!("v{i}"))?;
    }
    let records: Vec<WalRecord> = c.master.wal_since(0)?.collect::<Result<_, _>>()?;
    let encoded = records.iter().map(EncodedWalRecord::from).collect();
    Ok((c, encoded))
}

/// `record` with one bit of its last byte (inside the last value) flipped, as it might arrive
/// from a faulty link or memory: its header is intact, so it is accepted for delivery.
fn damaged(record: &EncodedWalRecord) -> Result<EncodedWalRecord, Box<dyn std::error::Error>> {
    let mut bytes = record.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x10;
    }
    Ok(EncodedWalRecord::from_bytes(bytes)?)
}

#[test]
fn a_window_with_a_damaged_record_changes_nothing() -> TestResult {
    let (c, records) = master_with(20)?;
    let dir = tempfile::tempdir()?;
    let replica = ReplicaEndpoint::open(fast().open(dir.path())?)?;
    let session = replica.hello(&hello(20))?.session;
    replica.apply_many(session, &records[..5])?;

    let mut window = records[5..].to_vec();
    window[7] = damaged(&records[12])?;
    match replica.apply_many(session, &window) {
        Err(Error::Core(kvstore_core::Error::Corrupt { reason, .. })) => {
            assert!(reason.contains("LSN 13"), "{reason}");
        }
        other => panic!("a damaged record was not refused: {other:?}"),
    }
    assert_eq!(replica.applied_lsn(), 5);
    assert_eq!(replica.store().len(), 5);
    assert_eq!(replica.store().get(b"k05")?, None);
    assert_eq!(replica.stats().applied, 5);

    // Sent again intact (as the master's worker does after the failed session), all of it lands.
    let acks = replica.apply_many(session, &records[5..])?;
    assert!(acks.iter().all(|a| a.applied_lsn == 20));
    assert_same(&c.master, replica.store(), "after the resend")?;
    Ok(())
}

#[test]
fn a_damaged_header_is_refused_on_arrival() -> TestResult {
    let (_c, records) = master_with(1)?;
    let mut bytes = records[0].as_bytes().to_vec();
    bytes[9] ^= 0x01; // inside the LSN
    assert!(matches!(
        EncodedWalRecord::from_bytes(bytes),
        Err(kvstore_core::Error::Corrupt { .. })
    ));
    let truncated = records[0].as_bytes()[..records[0].encoded_len() - 1].to_vec();
    assert!(EncodedWalRecord::from_bytes(truncated).is_err());
    Ok(())
}

#[test]
fn the_store_refuses_a_damaged_record_applied_directly() -> TestResult {
    let (c, records) = master_with(3)?;
    let dir = tempfile::tempdir()?;
    let store = fast().open(dir.path())?;
    let bad = [
        records[0].clone(),
        damaged(&records[1])?,
        records[2].clone(),
    ];
    assert!(matches!(
        store.apply_replicated_batch(&bad),
        Err(kvstore_core::Error::Corrupt { .. })
    ));
    assert_eq!((store.applied_lsn(), store.len()), (0, 0));
    assert_eq!(store.apply_replicated_batch(&records)?, 3);
    assert_same(&c.master, &store, "direct")?;
    Ok(())
}
