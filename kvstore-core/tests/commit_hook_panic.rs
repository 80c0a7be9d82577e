//! A commit hook that panics must not take the commit path down: the write it was told of
//! stays committed and later writers proceed. (Before the fix every later writer parked
//! forever.) Found in review.
use kvstore_core::{CommitHook, KvStore, WalRecord};
use std::sync::Arc;
use std::time::Duration;

/// A hook with a bug: it panics on one record.
struct Panicky;
#[allow(clippy::panic)] // the point of the test
impl CommitHook for Panicky {
    fn committed(&self, r: Arc<WalRecord>) {
        if r.lsn == 2 {
            panic!("hook bug");
        }
    }
}

#[test]
fn a_panicking_commit_hook_does_not_block_later_writers() {
    let dir = tempfile::tempdir().unwrap();
    let s = KvStore::open(dir.path()).unwrap();
    s.put("a", "1").unwrap();
    s.set_commit_hook(Some(Arc::new(Panicky)));
    let s2 = s.clone();
    let r = std::thread::spawn(move || s2.put("b", "2")).join();
    assert!(
        matches!(r, Ok(Ok(2))),
        "the write the hook was told of is committed: {r:?}"
    );
    s.set_commit_hook(None);
    let (tx, rx) = std::sync::mpsc::channel();
    let s3 = s.clone();
    std::thread::spawn(move || {
        let _ = tx.send(s3.put("c", "3"));
    });
    let got = rx.recv_timeout(Duration::from_secs(3));
    assert!(
        matches!(got, Ok(Ok(3))),
        "a later put must go through: {got:?}"
    );
    assert_eq!(s.get("b").unwrap(), Some(b"2".to_vec()));
}
