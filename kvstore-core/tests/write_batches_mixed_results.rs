//! Write batches hold their ops encoded as their record: empty keys and values, limits checked
//! before anything is written, and `write_batches` giving each batch its own result when
//! empty, oversize and valid batches are mixed; then a reopen reads back exactly the valid
//! ones.

mod common;

use common::TestResult;
use kvstore_core::{Error, KvStore, Op, Options, SyncPolicy, WriteBatch, MAX_KEY_BYTES};

fn open(dir: &std::path::Path) -> TestResult<KvStore> {
    Ok(Options::new()
        .sync_policy(SyncPolicy::Never)
        .max_value_bytes(1 << 10)
        .open(dir)?)
}

#[test]
fn mixed_batches_each_get_their_own_result_and_oversize_ones_write_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = open(dir.path())?;
        store.put("keep", "old")?;
        let mut empty_kv = WriteBatch::new();
        empty_kv.put(b"", b"").put(b"e", b"").delete(b"never-there");
        let mut big_value = WriteBatch::new();
        big_value
            .put("keep", "new")
            .put("v", vec![1u8; (1 << 10) + 1]);
        let mut big_key = WriteBatch::new();
        big_key
            .put("keep", "new2")
            .delete(vec![b'k'; MAX_KEY_BYTES + 1]);
        let mut valid = WriteBatch::new();
        valid.put("a", "1").delete("keep").put("a", "2");
        // Equality, clone and debug see the operations.
        let cloned = valid.clone();
        assert_eq!(cloned, valid);
        assert_eq!(
            cloned.ops().map(|op| op.to_op()).collect::<Vec<_>>(),
            vec![
                Op::Put {
                    key: b"a".to_vec(),
                    value: b"1".to_vec()
                },
                Op::Delete {
                    key: b"keep".to_vec()
                },
                Op::Put {
                    key: b"a".to_vec(),
                    value: b"2".to_vec()
                },
            ]
        );
        assert!(format!("{valid:?}").contains("Delete"));
        let before = store.last_lsn();
        let results = store.write_batches(vec![
            WriteBatch::new(),
            big_value,
            empty_kv,
            big_key,
            valid,
            WriteBatch::new(),
        ])?;
        assert_eq!(results.len(), 6, "{results:?}");
        assert!(matches!(results[0], Ok(l) if l == before), "{results:?}");
        assert!(
            matches!(results[1], Err(Error::ValueTooLarge { .. })),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Ok(l) if l == before + 1),
            "{results:?}"
        );
        assert!(
            matches!(results[3], Err(Error::KeyTooLarge { .. })),
            "{results:?}"
        );
        assert!(
            matches!(results[4], Ok(l) if l == before + 2),
            "{results:?}"
        );
        assert!(matches!(results[5], Ok(l) if l == before), "{results:?}");
        assert_eq!(store.last_lsn(), before + 2);
        assert_eq!(store.get(b"")?, Some(Vec::new()));
        assert_eq!(store.get(b"e")?, Some(Vec::new()));
        assert_eq!(store.get("a")?, Some(b"2".to_vec()));
        assert_eq!(store.get("keep")?, None);
        assert_eq!(store.get("v")?, None);
        // A single oversize batch touches nothing either.
        let mut again = WriteBatch::new();
        again.put("z", "1").put("v", vec![0u8; (1 << 10) + 1]);
        assert!(matches!(
            store.write_batch(again),
            Err(Error::ValueTooLarge { .. })
        ));
        assert_eq!(store.get("z")?, None);
        assert_eq!(store.last_lsn(), before + 2);
    }
    let store = open(dir.path())?;
    let all: Vec<(Vec<u8>, Vec<u8>)> = store.iter().collect::<Result<_, _>>()?;
    assert_eq!(
        all,
        vec![
            (b"".to_vec(), b"".to_vec()),
            (b"a".to_vec(), b"2".to_vec()),
            (b"e".to_vec(), b"".to_vec()),
        ]
    );
    Ok(())
}
