//! Automatic compaction converges: once it has reclaimed what it can, an idle store is not
//! compacted again and again.
//!
//! First case: a sealed log segment A holds live values plus the (now dead) puts of keys
//! that were deleted afterwards; A itself is below the dead ratio, so a compaction of the
//! dead segments leaves it alone. The tombstones of those deletes fill a second sealed
//! segment B, all dead bytes. A compaction of B must keep its tombstones (A still holds the
//! older puts they hide), and its output counts as all dead again: before the fix it was
//! picked and rewritten identically every maintenance interval, for ever, reclaiming
//! nothing. Now a pass that reclaims nothing is followed by a full one, which takes A too.
//!
//! Second case: a WAL consumer pins every log segment, so no pass can reclaim anything; the
//! store must then wait for more dead bytes instead of trying again every interval (a full
//! pass seals the active segment each time: a trickle of writes made a segment per tick).

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::{Options, SyncPolicy};

fn options(auto: bool) -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(48 << 10)
        .compaction_dead_ratio(0.5)
        .compaction_min_dead_bytes(4 << 10)
        .maintenance_interval(Duration::from_millis(10))
        .auto_compaction(auto)
}

fn long_key(prefix: &str, i: u32) -> Vec<u8> {
    let mut k = format!("{prefix}{i:05}").into_bytes();
    k.resize(200, b'.');
    k
}

#[test]
fn automatic_compaction_of_an_idle_store_settles() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = options(false).open(dir.path())?;
        // Segment A: 100 puts of long keys (to be deleted) and live values worth more bytes.
        for i in 0..100u32 {
            store.put(long_key("del", i), b"x")?;
        }
        let mut i = 0u32;
        while store.stats().segments < 2 {
            store.put(format!("keep{i:05}"), vec![b'k'; 300])?;
            i += 1;
        }
        // Segment B (the active one): the tombstones, long keys, so they weigh as much.
        for i in 0..100u32 {
            assert!(store.delete(long_key("del", i))?);
        }
    }
    // Reopen: the active segment B is sealed (it is more than 1/16 of a segment).
    let store = options(true).open(dir.path())?;
    let before = store.stats();
    assert!(
        before.segments >= 3,
        "B was not sealed on reopen: {before:?}"
    );
    // Automatic compaction starts (B is all dead), then must stop once nothing is left to
    // reclaim.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().compactions == 0 {
        assert!(
            Instant::now() < deadline,
            "no automatic compaction: {before:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let settled = store.stats().compactions;
    std::thread::sleep(Duration::from_millis(1000));
    let after = store.stats();
    assert!(
        after.compactions == settled,
        "automatic compaction keeps rewriting an idle store: {} more compactions in 1 s \
         (maintenance interval 10 ms) with no write; stats before {before:?}, now {after:?}",
        after.compactions - settled
    );
    assert!(
        after.dead_bytes < before.dead_bytes / 4,
        "the tombstones and the puts they hid were not reclaimed: before {before:?}, now {after:?}"
    );
    for i in 0..100u32 {
        assert_eq!(store.get(long_key("del", i))?, None);
    }
    Ok(())
}

#[test]
fn automatic_compaction_waits_while_wal_consumers_pin_the_dead_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = options(true)
        .sync_policy(SyncPolicy::Never)
        .open(dir.path())?;
    // A consumer that still needs everything: no log segment may be compacted.
    store.retain_wal("replica", 0);
    for round in 0..4u8 {
        for i in 0..150u32 {
            store.put(format!("key{i:04}"), vec![round; 100])?;
        }
    }
    let (dead, total) = {
        let s = store.stats();
        (s.dead_bytes, s.live_bytes + s.dead_bytes)
    };
    assert!(
        dead * 2 >= total,
        "the store is not past its dead ratio: {:?}",
        store.stats()
    );
    // Let automatic compaction find it can do nothing.
    std::thread::sleep(Duration::from_millis(200));
    let settled = store.stats();
    // A trickle of writes: each would be sealed into a segment of its own by a full pass.
    for i in 0..40u32 {
        store.put(format!("trickle{i}"), b"v")?;
        std::thread::sleep(Duration::from_millis(15));
    }
    let after = store.stats();
    assert!(
        after.segments <= settled.segments + 2,
        "automatic compaction kept sealing the active segment while a WAL consumer pinned \
         every dead byte: {} segments, {} before the trickle of writes",
        after.segments,
        settled.segments
    );
    assert_eq!(after.compactions, settled.compactions);
    Ok(())
}
