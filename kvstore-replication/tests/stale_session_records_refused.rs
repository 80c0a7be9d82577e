//! A replica checks a master's timeline only at HELLO, so only the session the newest HELLO
//! opened may write. Records were accepted on the epoch alone: those of a dead master
//! incarnation of the same epoch (still buffered in its old connection when the restarted
//! master says HELLO) were applied after the new incarnation's HELLO, so the replica silently
//! kept writes the master lost, under a timeline that says the new incarnation wrote those
//! LSNs; the master's own records at those LSNs were then ignored as duplicates and the
//! divergence was never detected.

mod common;

use common::*;
use kvstore_core::{Op, WalRecord};
use kvstore_replication::{Error, Hello, ReplicaEndpoint, Timeline};

fn put(lsn: u64, key: &str, value: &str) -> WalRecord {
    WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
    }
}

fn hello_with(timeline: &Timeline, master_last_lsn: u64) -> Hello {
    Hello {
        master_id: "m".into(),
        epoch: 1,
        master_last_lsn,
        force_resync: false,
        timeline: timeline.clone(),
    }
}

#[test]
fn records_of_a_dead_incarnation_are_refused_after_the_new_one_said_hello() -> TestResult {
    let dir = tempfile::tempdir()?;
    let replica = ReplicaEndpoint::open(fast().open(dir.path())?)?;

    // Incarnation X of the master (epoch 1) writes LSNs 1..=3 and opens a session.
    let mut x = Timeline::default();
    x.begin(1, 0xAAAA, 1);
    let x_session = replica.hello(&hello_with(&x, 3))?.session;
    replica.apply_many(
        x_session,
        &[put(1, "a", "x1"), put(2, "b", "x2"), put(3, "c", "x3")],
    )?;

    // X crashes having lost its unsynced LSNs 4..; it restarts as incarnation Y of the same
    // epoch, whose first LSN is 4, and says HELLO on a new connection.
    let mut y = x.clone();
    y.begin(1, 0xBBBB, 4);
    let y_opened = replica.hello(&hello_with(&y, 3))?;
    assert_eq!(y_opened.reply.applied_lsn, 3);

    // X's record 4 (sent before the crash, still buffered on its old connection) lands now.
    let stale = replica.apply_many(
        x_session,
        &[put(4, "lost", "written by the dead incarnation")],
    );
    assert!(
        matches!(stale, Err(Error::NoSession)),
        "a record of an ended session: {stale:?}"
    );
    // Y then writes its own LSN 4 and streams it.
    let fresh = replica.apply_many(
        y_opened.session,
        &[put(4, "y", "written by the live incarnation")],
    );

    let store = replica.store();
    assert_eq!(
        store.get(b"lost")?,
        None,
        "the replica applied a record of incarnation X after incarnation Y's HELLO \
         (stale apply result {stale:?}); Y's own LSN 4 then came back {fresh:?} and the \
         replica silently holds a write its master does not have"
    );
    assert_eq!(
        store.get(b"y")?,
        Some(b"written by the live incarnation".to_vec())
    );
    Ok(())
}
