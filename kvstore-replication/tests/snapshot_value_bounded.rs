//! A snapshot piece that declares a value larger than the replica's store accepts is refused
//! before anything is buffered, and the replica's contents stay as they were.

use kvstore_core::{KvStore, Options};
use kvstore_replication::{Error, Hello, ReplicaEndpoint, SnapshotChunk, SnapshotPiece};

#[test]
fn an_oversized_snapshot_value_is_refused_up_front() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: KvStore = Options::new().max_value_bytes(1024).open(dir.path())?;
    store.put(b"kept", b"as is")?;
    let endpoint = ReplicaEndpoint::open(store.clone())?;
    let session = endpoint
        .hello(&Hello {
            master_id: "m".into(),
            epoch: 1,
            master_last_lsn: 10,
            force_resync: true,
            timeline: Default::default(),
        })?
        .session;
    let chunk = SnapshotChunk {
        snapshot_lsn: 10,
        seq: 0,
        pieces: vec![SnapshotPiece {
            key: b"big".to_vec(),
            value_offset: 0,
            value_len: 1 << 30,
            data: vec![0u8; 512],
        }],
        last: false,
    };
    match endpoint.install_chunk(session, &chunk) {
        Err(Error::Protocol(reason)) => assert!(reason.contains("exceeds"), "{reason}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(store.get(b"kept")?, Some(b"as is".to_vec()));
    assert_eq!(store.get(b"big")?, None);
    Ok(())
}
