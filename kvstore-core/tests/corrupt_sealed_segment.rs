//! A flipped bit in a sealed segment is not a torn tail: opening must fail with
//! `Error::Corrupt` naming the file and the offset of the damaged record (or of the header),
//! and `RecoveryMode::Salvage` must open the store anyway, keeping the other segments intact.

mod common;

use std::collections::BTreeMap;

use common::{
    copy_dir, dump, flip_bit, hint_path, records, sealed_log_segments, TestResult,
    SEGMENT_HEADER_BYTES,
};
use kvstore_core::{Error, KvStore, Options, RecoveryMode, SyncPolicy};
use rand::Rng;

/// Bit positions tried per run, spread over headers, record headers, keys and values.
const FLIPS: usize = 120;

/// A store of several sealed segments; returns its contents by key.
fn build(dir: &std::path::Path) -> TestResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(4096)
        .auto_compaction(false)
        .open(dir)?;
    for i in 0..300u32 {
        store.put(
            format!("key{i:03}"),
            format!("value-{i}-{}", "x".repeat(i as usize % 50)),
        )?;
    }
    let contents = dump(&store)?.into_iter().collect();
    Ok(contents)
}

#[test]
fn flipped_bits_in_sealed_segments_are_reported_with_file_and_offset() -> TestResult {
    let pristine = tempfile::tempdir()?;
    let contents = build(pristine.path())?;
    let sealed = sealed_log_segments(pristine.path())?;
    assert!(
        sealed.len() >= 3,
        "want several sealed segments, got {sealed:?}"
    );
    let mut rng = rand::rng();
    for _ in 0..FLIPS {
        let seg = &sealed[rng.random_range(0..sealed.len())];
        let bit = rng.random_range(0..seg.len * 8);
        let byte = bit / 8;
        let expected_offset = if byte < SEGMENT_HEADER_BYTES {
            0
        } else {
            let records = records(&seg.path)?;
            let data_end = records
                .last()
                .map_or(SEGMENT_HEADER_BYTES, |r| r.offset + r.len);
            // A flip in zeros past the last record (preallocated space) damages no record:
            // the scan then finds garbage where the data ends.
            records
                .iter()
                .find(|r| r.offset <= byte && byte < r.offset + r.len)
                .map_or(data_end, |r| r.offset)
        };
        let dir = tempfile::tempdir()?;
        copy_dir(pristine.path(), dir.path())?;
        let name = seg.path.file_name().ok_or("no file name")?;
        let path = dir.path().join(name);
        flip_bit(&path, bit)?;
        // With its hint the segment is not read at open; without it, it is scanned.
        std::fs::remove_file(hint_path(dir.path(), seg.id))?;
        match KvStore::open(dir.path()) {
            Err(Error::Corrupt {
                path: reported,
                offset,
                reason,
            }) => {
                assert_eq!(reported, path, "bit {bit}: {reason}");
                assert_eq!(offset, expected_offset, "bit {bit} of {name:?}: {reason}");
            }
            Ok(_) => {
                return Err(format!("bit {bit} of {name:?} flipped, yet open succeeded").into())
            }
            Err(e) => return Err(format!("bit {bit} of {name:?}: unexpected {e}").into()),
        }
        let store = Options::new()
            .recovery_mode(RecoveryMode::Salvage)
            .open(dir.path())
            .map_err(|e| format!("salvage of bit {bit} of {name:?} failed: {e}"))?;
        // Keys whose only record lay in other segments are untouched.
        let salvaged: BTreeMap<Vec<u8>, Vec<u8>> = dump(&store)?.into_iter().collect();
        for (k, v) in &salvaged {
            assert_eq!(contents.get(k), Some(v), "salvage invented a value");
        }
        assert!(
            salvaged.len() < contents.len(),
            "salvage kept the damaged record"
        );
    }
    Ok(())
}
