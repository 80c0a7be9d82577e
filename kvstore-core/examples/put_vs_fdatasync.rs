//! How close one durable put comes to the disk's own `fdatasync`: alternates, in one process,
//! a `put` on a `SyncPolicy::Always` store with a raw 150-byte `pwrite` + `fdatasync` into a
//! preallocated file next to it, and prints both medians. Interleaving matters on a shared
//! virtual disk: a sync's latency drifts by tens of percent within a minute, so figures
//! measured at different moments cannot be compared.
//! `cargo run --release -p kvstore-core --example put_vs_fdatasync -- DIR [ROUNDS]`

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use kvstore_core::{Options, SyncPolicy};

fn median_us(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: put_vs_fdatasync DIR [ROUNDS]")?;
    let rounds: u64 = args.next().map_or(Ok(3000), |a| a.parse())?;
    let dir = std::path::Path::new(&dir);
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .open(dir.join("store"))?;
    let raw = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(dir.join("raw"))?;
    // Written and synced up front, as the store's log is preallocated.
    let record = [7u8; 150];
    raw.write_all_at(&vec![0u8; (rounds as usize + 1) * record.len()], 0)?;
    raw.sync_all()?;
    let (mut puts, mut syncs) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let start = Instant::now();
        raw.write_all_at(&record, i * record.len() as u64)?;
        raw.sync_data()?;
        syncs.push(start.elapsed());
        let start = Instant::now();
        store.put(format!("key{i:012}"), [b'v'; 100])?;
        puts.push(start.elapsed());
    }
    let (put, sync) = (median_us(&mut puts), median_us(&mut syncs));
    println!(
        "p50 durable put {put:.0} µs, raw pwrite + fdatasync {sync:.0} µs: {:.2}× ({rounds} of each, alternating)",
        put / sync
    );
    Ok(())
}
