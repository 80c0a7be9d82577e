//! Times a full ordered scan and random gets of an existing store, for profiling reads:
//! `cargo run --release -p kvstore-core --example scan -- DIR`

use std::time::Instant;

use kvstore_core::KvStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: scan DIR")?;
    let store = KvStore::open(&dir)?;
    let start = Instant::now();
    let mut keys = Vec::with_capacity(store.len());
    store.for_each::<&[u8], _>(.., |key, _value| {
        keys.push(key.to_vec());
        true
    })?;
    let scan = start.elapsed();
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..keys.len() {
        let key = &keys[(i * 7919) % keys.len()];
        found += store.get(key)?.is_some() as usize;
    }
    let gets = start.elapsed();
    println!(
        "scan: {} keys, {:.0} keys/s; gets: {found}, {:.0} ops/s",
        keys.len(),
        keys.len() as f64 / scan.as_secs_f64(),
        found as f64 / gets.as_secs_f64()
    );
    Ok(())
}
