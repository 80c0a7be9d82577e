//! `claim_writes` promises that the start its owner recorded covers every write it claims. A
//! snapshot install between `unclaimed_writes_start` and `claim_writes` lowers the LSN, so a
//! local write after it gets an LSN below the recorded start: the claim used to succeed and
//! forget that write (no timeline entry answered for it). It now fails, claims nothing, and
//! a new start covers the write. Found in review.

use kvstore_core::{Error, Op, Options, WalRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_claim_after_the_log_moved_back_fails_and_a_new_start_covers_the_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new().auto_compaction(false).open(dir.path())?;
    for lsn in 1..=100u64 {
        store.apply_replicated(&WalRecord {
            lsn,
            ops: vec![Op::Put {
                key: format!("k{lsn}").into_bytes(),
                value: b"v".to_vec(),
            }],
        })?;
    }
    let recorded = store.unclaimed_writes_start();
    assert_eq!(recorded, 101);
    let mut install = store.begin_snapshot_install(50)?;
    install.put("s", "1")?;
    install.finish()?;
    let lsn = store.put("local", "w")?;
    assert_eq!(lsn, 51);
    assert!(matches!(
        store.claim_writes(recorded),
        Err(Error::WritesNotCovered {
            recorded_start: 101,
            first_write: 51
        })
    ));
    // Nothing was claimed: the write is still reported, and a claim from there succeeds.
    let again = store.unclaimed_writes_start();
    assert_eq!(again, 51);
    store.claim_writes(again)?;
    assert_eq!(store.unclaimed_writes_start(), 52);
    Ok(())
}

#[test]
fn writes_after_the_recorded_start_are_covered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new().open(dir.path())?;
    store.put("before", "1")?;
    let recorded = store.unclaimed_writes_start();
    assert_eq!(recorded, 1, "the unclaimed write");
    store.put("between", "2")?;
    store.claim_writes(recorded)?;
    assert_eq!(store.unclaimed_writes_start(), 3);
    Ok(())
}
