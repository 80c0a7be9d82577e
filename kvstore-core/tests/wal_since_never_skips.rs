//! After an automatic (partial) compaction removed a log segment in the middle of the log,
//! `wal_since` either fails with `WalCompacted` or returns contiguous LSNs: it never skips
//! records (a replica would stall on the gap forever). Found in review.
use kvstore_core::{Error, Options, SyncPolicy};
use std::time::{Duration, Instant};

#[test]
fn wal_since_never_skips_lsns_after_a_partial_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
    };
    {
        let s = opts().auto_compaction(false).open(dir.path()).unwrap();
        let v = vec![b'v'; 1000];
        // segment A: a0..a2
        for i in 0..3 {
            s.put(format!("a{i}"), &v).unwrap();
        }
        // segment B: b0..b2 never overwritten
        for i in 0..4 {
            s.put(format!("b{i}"), &v).unwrap();
        }
        // segment C: overwrite a0 (A gets dead bytes) and x twice (C gets dead bytes)
        s.put("a0", &v).unwrap();
        s.put("x", &v).unwrap();
        s.put("x", &v).unwrap();
        // roll on
        for i in 0..6 {
            s.put(format!("d{i}"), &v).unwrap();
        }
        s.flush().unwrap();
    }
    let s = opts()
        .auto_compaction(true)
        .compaction_min_dead_bytes(1)
        .compaction_dead_ratio(0.001)
        .maintenance_interval(Duration::from_millis(10))
        .open(dir.path())
        .unwrap();
    let t = Instant::now();
    while s.stats().compactions == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(s.stats().compactions > 0, "no automatic compaction");
    // Ask from every LSN: whenever the call succeeds, the LSNs must be contiguous.
    for after in 0..s.last_lsn() {
        match s.wal_since(after) {
            Err(Error::WalCompacted { .. }) => continue,
            Err(e) => panic!("{e}"),
            Ok(iter) => {
                for (expect, r) in (after + 1..).zip(iter) {
                    let r = r.unwrap();
                    assert_eq!(
                        r.lsn, expect,
                        "wal_since({after}) skipped LSNs {expect}..{}",
                        r.lsn
                    );
                }
            }
        }
    }
}
