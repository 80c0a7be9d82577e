//! `Transport::recv_acks` hands over every acknowledgement that has arrived, in order, so a
//! worker books a window at once; an error that follows acks is returned only after them.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::EncodedWalRecord;
use kvstore_replication::{Ack, Error, InProcessReplica, InProcessTransport, Transport};

type Connected = (
    Vec<EncodedWalRecord>,
    tempfile::TempDir,
    InProcessReplica,
    InProcessTransport,
);

/// Writes `puts` records on the master and opens a session to a fresh replica; returns the
/// master's log in its encoding, the replica (and its directory) and the transport.
fn connected(c: &Cluster, puts: u32) -> Result<Connected, Box<dyn std::error::Error>> {
    for i in 0..puts {
        c.master.put(format!("k{i:03}"), format!("v{i}"))?;
    }
    let mut iter = c.master.wal_since(0)?;
    let mut records = Vec::new();
    while let Some(record) = iter.next_encoded() {
        records.push(record?);
    }
    let dir = tempfile::tempdir()?;
    let replica = InProcessReplica::open("r", dir.path(), fast())?;
    let mut transport = replica.transport();
    transport.hello(&hello(1, u64::from(puts)))?;
    Ok((records, dir, replica, transport))
}

#[test]
fn every_ack_of_two_windows_comes_back_in_one_call() -> TestResult {
    let c = cluster(0, fast())?;
    let (records, _dir, replica, mut transport) = connected(&c, 30)?;
    transport.send_window(records[..10].to_vec())?;
    transport.send_window(records[10..30].to_vec())?;

    let mut acks = Vec::new();
    transport.recv_acks(Duration::from_secs(5), &mut acks)?;
    assert_eq!(acks.len(), 30);
    assert_eq!(
        acks.iter().map(|a| a.lsn).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    assert!(acks[..10].iter().all(|a| a.applied_lsn == 10));
    assert!(acks[10..].iter().all(|a| a.applied_lsn == 30));

    // Nothing more in flight: an empty answer, and the session stays open.
    acks.clear();
    transport.recv_acks(Duration::from_millis(10), &mut acks)?;
    assert!(acks.is_empty());
    assert_eq!(transport.recv_ack(Duration::from_millis(10))?, None::<Ack>);
    assert_eq!(replica.store().map(|s| s.applied_lsn()), Some(30));
    Ok(())
}

#[test]
fn a_damaged_window_fails_the_session_after_the_acks_before_it() -> TestResult {
    let c = cluster(0, fast())?;
    let (records, _dir, replica, mut transport) = connected(&c, 20)?;
    transport.send_window(records[..10].to_vec())?;
    // Flip a byte in the last operation of record 11: its checksum no longer matches.
    let mut bytes = records[10].as_bytes().to_vec();
    let at = bytes.len() - 1;
    bytes[at] ^= 0xff;
    let mut damaged = vec![EncodedWalRecord::from_bytes(bytes)?];
    damaged.extend_from_slice(&records[11..]);
    transport.send_window(damaged)?;

    let mut acks = Vec::new();
    transport.recv_acks(Duration::from_secs(5), &mut acks)?;
    assert_eq!(acks.len(), 10);
    assert!(acks.iter().all(|a| a.applied_lsn == 10));
    acks.clear();
    let failed = transport.recv_acks(Duration::from_secs(5), &mut acks);
    assert!(
        matches!(
            failed,
            Err(Error::Core(kvstore_core::Error::Corrupt { .. }))
        ),
        "{failed:?}"
    );
    assert!(acks.is_empty());
    // The session is over; the damaged window changed nothing.
    assert!(matches!(
        transport.recv_acks(Duration::from_millis(10), &mut acks),
        Err(Error::NoSession)
    ));
    assert_eq!(replica.store().map(|s| s.applied_lsn()), Some(10));
    Ok(())
}
