//! Every iteration path (range both ways and mixed, scan_prefix, for_each, keys)
//! agrees with a BTreeMap model on keys full of 0x00/0xFF bytes, the empty key and keys at
//! MAX_KEY_BYTES, across chunk boundaries, rolls, a compaction and a reopen.

use std::collections::BTreeMap;
use std::ops::Bound;

use kvstore_core::{KvStore, Options, SyncPolicy, MAX_KEY_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const ALPHABET: [u8; 5] = [0x00, 0x01, b'a', 0xFE, 0xFF];

fn random_key(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..100) {
        0 => Vec::new(),
        1 => vec![0xFF; MAX_KEY_BYTES],
        2 => {
            let mut k = vec![0xFF; MAX_KEY_BYTES];
            k[MAX_KEY_BYTES - 1] = 0xFE;
            k
        }
        3 => vec![0x00; MAX_KEY_BYTES],
        _ => {
            let len = rng.random_range(0..5);
            (0..len).map(|_| ALPHABET[rng.random_range(0..5)]).collect()
        }
    }
}

fn random_bound(rng: &mut StdRng) -> Bound<Vec<u8>> {
    match rng.random_range(0..3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(random_key(rng)),
        _ => Bound::Excluded(random_key(rng)),
    }
}

fn valid(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Excluded(a), Bound::Excluded(b)) => a < b,
        (Bound::Included(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) => {
            a < b
        }
    }
}

fn model_range(model: &Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    if !valid(lo, hi) {
        return Vec::new();
    }
    model
        .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn short(k: &[u8]) -> String {
    if k.len() > 8 {
        format!("{:02x?}..(len {})", &k[..8], k.len())
    } else {
        format!("{k:02x?}")
    }
}

fn check(store: &KvStore, model: &Model, rng: &mut StdRng) -> TestResult {
    let all: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let fwd: Vec<_> = store.iter().collect::<Result<_, _>>()?;
    assert!(fwd == all, "forward iter differs");
    let mut rev: Vec<_> = store.iter().rev().collect::<Result<_, _>>()?;
    rev.reverse();
    assert!(rev == all, "reverse iter differs");
    for round in 0..60 {
        let (lo, hi) = (random_bound(rng), random_bound(rng));
        let want = model_range(model, &lo, &hi);
        let r = (lo.clone(), hi.clone());
        let got: Vec<_> = store
            .range::<Vec<u8>, _>(r.clone())
            .collect::<Result<_, _>>()?;
        assert!(got == want, "range {round} forward");
        let mut got: Vec<_> = store
            .range::<Vec<u8>, _>(r.clone())
            .rev()
            .collect::<Result<_, _>>()?;
        got.reverse();
        assert!(got == want, "range {round} reverse");
        // Mixed ends.
        let mut it = store.range::<Vec<u8>, _>(r.clone());
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let item = if rng.random_bool(0.5) {
                it.next().map(|x| x.map(|x| (true, x)))
            } else {
                it.next_back().map(|x| x.map(|x| (false, x)))
            };
            match item {
                None => break,
                Some(Ok((true, x))) => front.push(x),
                Some(Ok((false, x))) => back.push(x),
                Some(Err(e)) => return Err(e.into()),
            }
        }
        back.reverse();
        front.extend(back);
        assert!(front == want, "range {round} mixed");
        let mut visited = Vec::new();
        store.for_each::<Vec<u8>, _>(r.clone(), |k, v| {
            visited.push((k.to_vec(), v.to_vec()));
            true
        })?;
        assert!(visited == want, "for_each {round}");
        let limit = rng.random_range(0..3000);
        let keys = store.keys::<Vec<u8>, _>(r.clone(), limit);
        let want_keys: Vec<_> = want.iter().take(limit).map(|(k, _)| k.clone()).collect();
        assert!(keys == want_keys, "keys {round} limit {limit}");
    }
    let mut prefixes: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFF],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![0x00],
        vec![0xFE, 0xFF],
        vec![b'a', 0xFF],
    ];
    for _ in 0..20 {
        prefixes.push(random_key(rng));
    }
    for p in prefixes {
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got: Vec<_> = store.scan_prefix(&p).collect::<Result<_, _>>()?;
        assert!(got == want, "scan_prefix {} forward", short(&p));
        let mut got: Vec<_> = store.scan_prefix(&p).rev().collect::<Result<_, _>>()?;
        got.reverse();
        assert!(got == want, "scan_prefix {} reverse", short(&p));
    }
    Ok(())
}

#[test]
fn iteration_matches_a_model_on_edge_keys() -> TestResult {
    let dir = tempfile::tempdir()?;
    let opts = || {
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(256 << 10)
            .auto_compaction(false)
    };
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut model = Model::new();
    let store = KvStore::open_with(dir.path(), opts())?;
    for i in 0..4000u32 {
        let key = random_key(&mut rng);
        if rng.random_range(0..5) == 0 {
            store.delete(&key)?;
            model.remove(&key);
        } else {
            let value = format!("v{i}").into_bytes();
            store.put(&key, &value)?;
            model.insert(key, value);
        }
    }
    // Dense ascending keys too, so several chunks of 256 and 1024 keys exist.
    for i in 0..3000u32 {
        let mut key = vec![0xFF, 0xFF];
        key.extend_from_slice(&i.to_be_bytes());
        store.put(&key, b"x")?;
        model.insert(key, b"x".to_vec());
    }
    check(&store, &model, &mut rng)?;
    store.compact()?;
    check(&store, &model, &mut rng)?;
    drop(store);
    let store = KvStore::open_with(dir.path(), opts())?;
    check(&store, &model, &mut rng)?;
    Ok(())
}
