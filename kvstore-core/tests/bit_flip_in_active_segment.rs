//! One flipped bit early in the active segment is corruption, not a torn tail: open refuses
//! with `Error::Corrupt` instead of truncating away every later acknowledged record, and
//! `RecoveryMode::Salvage` opens with the records before the damage. Found in review.
use kvstore_core::{Error, Options, RecoveryMode, SyncPolicy};
use std::io::{Read, Seek, SeekFrom, Write};

#[test]
fn a_bit_flip_early_in_the_active_segment_is_reported_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Options::new()
            .sync_policy(SyncPolicy::Always)
            .open(dir.path())
            .unwrap();
        for i in 0..100 {
            s.put(format!("key{i:03}"), format!("value{i:03}")).unwrap();
        }
    }
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    // First record starts at 40; record header 24, op header 7, key 6, then the value. The
    // 99 records after it say the log was synced past it when they were written: the flip
    // hit acknowledged, synced data.
    let at = 40 + 24 + 7 + 6 + 2;
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
    drop(f);
    match Options::new()
        .sync_policy(SyncPolicy::Always)
        .open(dir.path())
    {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!(path, seg);
            assert_eq!(
                offset, 40,
                "the damaged record starts right after the header"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The bytes are still there for an operator; salvage keeps what precedes the damage.
    let salvaged = Options::new()
        .recovery_mode(RecoveryMode::Salvage)
        .open(dir.path())
        .unwrap();
    assert_eq!(salvaged.get("key000").unwrap(), None);
}
