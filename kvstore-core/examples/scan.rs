//! Times a full ordered scan and random gets of an existing store, for profiling reads:
//! `cargo run --release -p kvstore-core --example scan -- DIR [LOAD_KEYS]` (loads LOAD_KEYS
//! keys first into an empty store, as kvstore-bench does)

use std::time::Instant;

use kvstore_core::KvStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: scan DIR [LOAD_KEYS]")?;
    let store = KvStore::open(&dir)?;
    let load: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    if store.is_empty() && load > 0 {
        // kvstore-bench's load: keys in an order unrelated to key order, batches of 1,000.
        for chunk in (0..load).collect::<Vec<_>>().chunks(1000) {
            let mut batch = kvstore_core::WriteBatch::new();
            for i in chunk {
                let key = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                batch.put(key, [b'v'; 100]);
            }
            store.write_batch(batch)?;
        }
    }
    let start = Instant::now();
    let mut scanned = 0usize;
    let mut bytes = 0usize;
    store.for_each::<&[u8], _>(.., |key, value| {
        scanned += 1;
        bytes += key.len() + value.len();
        true
    })?;
    let scan = start.elapsed();
    std::hint::black_box(bytes);
    let mut keys = Vec::with_capacity(store.len());
    store.for_each::<&[u8], _>(.., |key, _| {
        keys.push(key.to_vec());
        true
    })?;
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..keys.len() {
        let key = &keys[(i * 7919) % keys.len()];
        found += store.get(key)?.is_some() as usize;
    }
    let gets = start.elapsed();
    println!(
        "scan: {} keys, {:.0} keys/s; gets: {found}, {:.0} ops/s",
        scanned,
        scanned as f64 / scan.as_secs_f64(),
        found as f64 / gets.as_secs_f64()
    );
    Ok(())
}
