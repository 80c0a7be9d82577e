//! `FaultyVfs::heal` stops injecting every fault its type lists: it used to lift the sync
//! and write failures but leave a `delay_syncs` delay in place, so every later sync still
//! slept.

use std::time::{Duration, Instant};

use kvstore_core::io::{FaultyVfs, Vfs};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn heal_also_ends_a_sync_delay() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let file = vfs.open(&dir.path().join("f"), true)?;
    file.write_all_at(b"bytes", 0)?;

    const DELAY: Duration = Duration::from_secs(2);
    vfs.delay_syncs(DELAY);
    vfs.heal();

    let started = Instant::now();
    file.sync_data()?;
    let took = started.elapsed();
    assert!(
        took < DELAY / 2,
        "a sync after heal() took {took:?}: the injected {DELAY:?} delay is still applied"
    );
    Ok(())
}
