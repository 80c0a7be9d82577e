//! Times opening an existing store, for profiling recovery:
//! `cargo run --release -p kvstore-core --example reopen -- DIR [TIMES]`
//! (creates DIR with 200,000 keys of 16 B and values of 100 B when it does not exist).

use std::time::Instant;

use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: reopen DIR [TIMES]")?;
    let times: usize = args.next().map_or(Ok(5), |t| t.parse())?;
    if !std::path::Path::new(&dir).exists() {
        let store = Options::new().sync_policy(SyncPolicy::Never).open(&dir)?;
        for chunk in 0..200u64 {
            let mut batch = WriteBatch::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                let key = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                batch.put(key, [b'v'; 100]);
            }
            store.write_batch(batch)?;
        }
        for i in 0..200_000u64 {
            let key = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            store.put(key, [b'w'; 100])?;
        }
    }
    for _ in 0..times {
        let start = Instant::now();
        let store = KvStore::open(&dir)?;
        let took = start.elapsed();
        let stats = store.stats();
        let resident_mib = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| (pages * 4096) >> 20);
        println!(
            "open: {:.1} ms, {} keys, index {:.1} B/key, resident {resident_mib} MiB",
            took.as_secs_f64() * 1e3,
            stats.keys,
            stats.index_bytes as f64 / stats.keys.max(1) as f64,
        );
    }
    Ok(())
}
