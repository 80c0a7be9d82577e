//! Repeated snapshot chunks, as `SnapshotChunk` and `SnapshotAck` document them: a copy of a
//! chunk already taken (other than chunk 0) changes nothing, and chunk 0 always starts the
//! install over, even of the same snapshot — what was taken before it never reaches the
//! store.

use kvstore_core::{KvStore, Options, SyncPolicy};
use kvstore_replication::{
    Hello, ReplicaEndpoint, Session, SnapshotAck, SnapshotChunk, SnapshotPiece,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn chunk(seq: u64, key: &[u8], last: bool) -> SnapshotChunk {
    SnapshotChunk {
        snapshot_lsn: 10,
        seq,
        pieces: vec![SnapshotPiece {
            key: key.to_vec(),
            value_offset: 0,
            value_len: 1,
            data: vec![b'v'],
        }],
        last,
    }
}

fn replica(
) -> Result<(tempfile::TempDir, KvStore, ReplicaEndpoint, Session), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: KvStore = Options::new()
        .sync_policy(SyncPolicy::Never)
        .open(dir.path())?;
    let endpoint = ReplicaEndpoint::open(store.clone())?;
    let session = endpoint
        .hello(&Hello {
            master_id: "m".into(),
            epoch: 1,
            master_last_lsn: 10,
            force_resync: false,
            timeline: Default::default(),
        })?
        .session;
    Ok((dir, store, endpoint, session))
}

#[test]
fn a_repeated_chunk_changes_nothing() -> TestResult {
    let (_dir, store, endpoint, session) = replica()?;
    for (seq, key) in [(0, b"a"), (1, b"b"), (2, b"c")] {
        assert_eq!(
            endpoint
                .install_chunk(session, &chunk(seq, key, false))?
                .next_seq,
            seq + 1
        );
    }
    let ack = endpoint.install_chunk(session, &chunk(1, b"b", false))?;
    assert_eq!(
        ack,
        SnapshotAck {
            next_seq: 3,
            applied_lsn: 0,
            finished: false
        }
    );
    assert!(
        endpoint
            .install_chunk(session, &chunk(3, b"d", true))?
            .finished
    );
    assert_eq!(store.applied_lsn(), 10);
    assert_eq!(store.keys(..b"z".as_slice(), 10), [b"a", b"b", b"c", b"d"]);
    Ok(())
}

#[test]
fn chunk_zero_starts_the_install_over() -> TestResult {
    let (_dir, store, endpoint, session) = replica()?;
    for (seq, key) in [(0, b"a"), (1, b"b"), (2, b"c")] {
        endpoint.install_chunk(session, &chunk(seq, key, false))?;
    }
    assert_eq!(
        endpoint
            .install_chunk(session, &chunk(0, b"x", false))?
            .next_seq,
        1
    );
    // The old install's next chunk is refused, without effect.
    assert_eq!(
        endpoint
            .install_chunk(session, &chunk(3, b"d", true))?
            .next_seq,
        1
    );
    assert!(
        endpoint
            .install_chunk(session, &chunk(1, b"y", true))?
            .finished
    );
    assert_eq!(store.keys(..b"z".as_slice(), 10), [b"x", b"y"]);
    Ok(())
}
