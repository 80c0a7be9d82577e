//! The everyday API: put, get, delete, batches, ranges, reopen, wal_since, apply_replicated.

use kvstore_core::{Error, KvStore, Op, Options, SyncPolicy, WalRecord, WriteBatch};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn put_get_delete_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = KvStore::open(dir.path())?;
        assert_eq!(store.put(b"a", b"1")?, 1);
        assert_eq!(store.put(b"b", b"2")?, 2);
        assert_eq!(store.put(b"a", b"3")?, 3);
        assert!(store.delete(b"b")?);
        assert!(!store.delete(b"missing")?);
        assert_eq!(store.get(b"a")?, Some(b"3".to_vec()));
        assert_eq!(store.get(b"b")?, None);
        assert_eq!(store.last_lsn(), 4);
    }
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.get(b"a")?, Some(b"3".to_vec()));
    assert_eq!(store.get(b"b")?, None);
    assert_eq!(store.last_lsn(), 4);
    assert_eq!(store.len(), 1);
    Ok(())
}

#[test]
fn second_open_of_a_directory_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _first = KvStore::open(dir.path())?;
    match KvStore::open(dir.path()) {
        Err(Error::Locked { .. }) => Ok(()),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn ranges_prefixes_and_reverse() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(dir.path(), Options::new().sync_policy(SyncPolicy::Never))?;
    let mut batch = WriteBatch::new();
    for i in 0..1000u32 {
        batch.put(format!("k{i:04}"), i.to_le_bytes());
    }
    batch.put(b"other", b"x");
    store.write_batch(batch)?;
    let keys: Vec<Vec<u8>> = store
        .range(b"k0100".as_slice()..b"k0200".as_slice())
        .map(|r| r.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(keys.len(), 100);
    assert_eq!(keys[0], b"k0100");
    let rev: Vec<Vec<u8>> = store
        .scan_prefix(b"k")
        .rev()
        .map(|r| r.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(rev.len(), 1000);
    assert_eq!(rev[0], b"k0999");
    assert_eq!(rev[999], b"k0000");
    // Both ends at once meet without duplicates or gaps.
    let mut it = store.iter();
    let mut seen = 0;
    loop {
        let front = it.next().transpose()?;
        let back = it.next_back().transpose()?;
        seen += front.is_some() as usize + back.is_some() as usize;
        if front.is_none() && back.is_none() {
            break;
        }
    }
    assert_eq!(seen, 1001);
    assert_eq!(store.range(b"z".as_slice()..b"a".as_slice()).count(), 0);
    Ok(())
}

#[test]
fn limits_are_enforced_with_clear_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(dir.path(), Options::new().max_value_bytes(1024))?;
    assert!(matches!(
        store.put(vec![0u8; 64 * 1024 + 1], b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        store.put(b"k", vec![0u8; 1025]),
        Err(Error::ValueTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    assert_eq!(store.last_lsn(), 0);
    Ok(())
}

#[test]
fn wal_since_feeds_apply_replicated() -> TestResult {
    let master_dir = tempfile::tempdir()?;
    let replica_dir = tempfile::tempdir()?;
    let master = KvStore::open_with(
        master_dir.path(),
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096),
    )?;
    for i in 0..500u32 {
        master.put(format!("key{i}"), format!("value{i}"))?;
        if i % 7 == 0 {
            master.delete(format!("key{}", i / 2))?;
        }
    }
    let replica = KvStore::open(replica_dir.path())?;
    let records: Vec<WalRecord> = master.wal_since(0)?.collect::<Result<_, _>>()?;
    assert_eq!(records.len() as u64, master.last_lsn());
    for r in &records {
        assert!(replica.apply_replicated(r)?);
    }
    // Duplicates are ignored, gaps refused.
    assert!(!replica.apply_replicated(&records[3])?);
    let gap = WalRecord {
        lsn: master.last_lsn() + 2,
        ops: vec![Op::Delete { key: b"x".to_vec() }],
    };
    assert!(matches!(
        replica.apply_replicated(&gap),
        Err(Error::LsnGap { .. })
    ));
    let m: Vec<_> = master.iter().collect::<Result<_, _>>()?;
    let r: Vec<_> = replica.iter().collect::<Result<_, _>>()?;
    assert_eq!(m, r);
    drop(replica);
    let replica = KvStore::open(replica_dir.path())?;
    assert_eq!(replica.applied_lsn(), master.last_lsn());
    let tail: Vec<WalRecord> = master.wal_since(400)?.collect::<Result<_, _>>()?;
    assert_eq!(tail.first().map(|r| r.lsn), Some(401));
    Ok(())
}

#[test]
fn compaction_reclaims_space_and_keeps_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let opts = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(64 * 1024)
        .auto_compaction(false);
    {
        let store = KvStore::open_with(dir.path(), opts.clone())?;
        for round in 0..3 {
            for i in 0..2000u32 {
                store.put(format!("key{i:05}"), format!("value{i}-{round}"))?;
            }
        }
        for i in 0..500u32 {
            store.delete(format!("key{i:05}"))?;
        }
        let before = store.stats();
        let report = store.compact()?;
        let after = store.stats();
        assert!(report.segments_compacted > 0);
        assert!(
            after.segment_bytes < before.segment_bytes / 2,
            "{before:?} -> {after:?}"
        );
        assert_eq!(store.len(), 1500);
        assert_eq!(store.get(b"key01999")?, Some(b"value1999-2".to_vec()));
        assert_eq!(store.get(b"key00001")?, None);
        assert!(matches!(
            store.wal_since(0),
            Err(Error::WalCompacted { .. })
        ));
    }
    let store = KvStore::open_with(dir.path(), opts)?;
    assert_eq!(store.len(), 1500);
    assert_eq!(store.get(b"key00001")?, None);
    assert_eq!(store.get(b"key00500")?, Some(b"value500-2".to_vec()));
    assert_eq!(store.last_lsn(), 6500);
    Ok(())
}

#[test]
fn apply_replicated_batch_skips_duplicates_and_stops_at_a_gap() -> TestResult {
    let (mdir, rdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let master = KvStore::open_with(mdir.path(), Options::new().sync_policy(SyncPolicy::Never))?;
    for i in 0..100u32 {
        master.put(format!("k{i}"), format!("v{i}"))?;
    }
    let records: Vec<WalRecord> = master.wal_since(0)?.collect::<Result<_, _>>()?;
    let replica = KvStore::open(rdir.path())?;
    assert_eq!(replica.apply_replicated_batch(&records[..40])?, 40);
    let fsyncs = replica.stats().fsyncs;
    // Overlapping run: 30..40 are duplicates, 40..100 new, all in one group.
    assert_eq!(replica.apply_replicated_batch(&records[30..])?, 100);
    assert_eq!(replica.stats().fsyncs, fsyncs + 1);
    let more: Vec<WalRecord> = (0..3u64)
        .map(|i| WalRecord {
            lsn: if i == 1 { 103 } else { 101 + i },
            ops: vec![Op::Put {
                key: format!("x{i}").into_bytes(),
                value: b"v".to_vec(),
            }],
        })
        .collect();
    assert!(matches!(
        replica.apply_replicated_batch(&more),
        Err(Error::LsnGap {
            expected: 102,
            got: 103
        })
    ));
    assert_eq!(replica.applied_lsn(), 101);
    let m: Vec<_> = master.iter().collect::<Result<_, _>>()?;
    let r: Vec<_> = replica
        .iter()
        .filter(|e| !matches!(e, Ok((k, _)) if k == b"x0"))
        .collect::<Result<_, _>>()?;
    assert_eq!(m, r);
    Ok(())
}

#[test]
fn for_each_matches_range_and_stops_when_asked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(
        dir.path(),
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(8192),
    )?;
    for i in 0..3000u32 {
        store.put(format!("k{i:05}"), format!("value-{i}"))?;
    }
    store.delete(b"k00100")?;
    let expected: Vec<(Vec<u8>, Vec<u8>)> = store
        .range(b"k00050".as_slice()..b"k02900".as_slice())
        .collect::<Result<_, _>>()?;
    let mut seen = Vec::new();
    store.for_each(b"k00050".as_slice()..b"k02900".as_slice(), |k, v| {
        seen.push((k.to_vec(), v.to_vec()));
        true
    })?;
    assert_eq!(seen, expected);
    let mut count = 0;
    store.for_each::<&[u8], _>(.., |_, _| {
        count += 1;
        count < 10
    })?;
    assert_eq!(count, 10);
    Ok(())
}

#[test]
fn remove_commit_hook_removes_only_the_given_hook() -> TestResult {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Counting(AtomicU64);
    impl kvstore_core::CommitHook for Counting {
        fn committed(&self, _record: Arc<WalRecord>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(dir.path(), Options::new().sync_policy(SyncPolicy::Never))?;
    let first = Arc::new(Counting::default());
    let second = Arc::new(Counting::default());
    let (first_hook, second_hook): (
        Arc<dyn kvstore_core::CommitHook>,
        Arc<dyn kvstore_core::CommitHook>,
    ) = (first.clone(), second.clone());
    store.set_commit_hook(Some(first_hook.clone()));
    store.set_commit_hook(Some(second_hook.clone()));
    assert!(
        !store.remove_commit_hook(&first_hook),
        "the first hook was already replaced"
    );
    store.put(b"k", b"v")?;
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
    assert!(store.remove_commit_hook(&second_hook));
    store.put(b"k", b"w")?;
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
    Ok(())
}

#[test]
fn keys_lists_a_range_without_values_in_pages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(dir.path(), Options::new().sync_policy(SyncPolicy::Never))?;
    for i in 0..2500u32 {
        store.put(format!("user:{i:05}"), b"v")?;
    }
    store.put(b"zzz", b"v")?;
    let end = kvstore_core::prefix_end(b"user:");
    let all = store.keys::<Vec<u8>, _>(
        (std::ops::Bound::Included(b"user:".to_vec()), end.clone()),
        usize::MAX,
    );
    assert_eq!(all.len(), 2500);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    let page = store.keys::<Vec<u8>, _>((std::ops::Bound::Excluded(all[99].clone()), end), 10);
    assert_eq!(page, all[100..110].to_vec());
    assert!(store.keys::<&[u8], _>(.., 0).is_empty());
    Ok(())
}

/// `key_version` changes with every write of the key (the same bytes included), with a
/// key created and deleted again between two looks, and with a snapshot install; writes of
/// other keys leave it alone; compaction may change it, but two looks after it agree.
#[test]
fn key_version_tells_whether_a_key_changed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open_with(dir.path(), Options::default().segment_bytes(4 << 10))?;
    let absent = store.key_version(b"k");
    store.put(b"other", b"x")?;
    assert_eq!(store.key_version(b"k"), absent, "a write of another key");
    store.put(b"k", b"v")?;
    let first = store.key_version(b"k");
    assert_ne!(first, absent);
    store.put(b"k", b"v")?;
    let again = store.key_version(b"k");
    assert_ne!(again, first, "the same bytes written again");
    assert!(store.delete(b"other")?);
    assert_eq!(store.key_version(b"k"), again, "a delete of another key");
    let mut batch = WriteBatch::new();
    batch.put(b"other", b"y");
    batch.put(b"k", b"w");
    store.write_batch(batch)?;
    assert_ne!(store.key_version(b"k"), again, "a batch");

    // Created and deleted between two looks: not the same "no value".
    let gone = store.key_version(b"brief");
    store.put(b"brief", b"1")?;
    assert!(store.delete(b"brief")?);
    assert_ne!(store.key_version(b"brief"), gone);

    // Compaction may move the version; after it, looks agree again, and the value is kept.
    for i in 0..400u32 {
        store.put(format!("filler{}", i % 20), [b'x'; 64])?;
    }
    let report = store.compact()?;
    assert!(report.segments_compacted > 0, "{report:?}");
    let compacted = store.key_version(b"k");
    assert_eq!(store.key_version(b"k"), compacted);
    assert_eq!(store.get(b"k")?, Some(b"w".to_vec()));
    store.put(b"k", b"w")?;
    assert_ne!(store.key_version(b"k"), compacted);

    // A snapshot install replaces every value: every version changes, even of a key that
    // ends with the LSN it had.
    let other_dir = tempfile::tempdir()?;
    let source = KvStore::open(other_dir.path())?;
    source.put(b"k", b"from elsewhere")?;
    let before = store.key_version(b"k");
    let snapshot = source.snapshot();
    let mut install = store.begin_snapshot_install(snapshot.lsn())?;
    for entry in snapshot {
        let (k, v) = entry?;
        install.put(k, v)?;
    }
    install.finish()?;
    assert_ne!(store.key_version(b"k"), before);
    assert_eq!(store.get(b"k")?, Some(b"from elsewhere".to_vec()));
    Ok(())
}
