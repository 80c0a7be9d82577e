//! Model-based test: random sequences of put / delete / write_batch / range (both directions)
//! / scan_prefix / flush / reopen / compact / crash-truncate run against the store and against
//! a `BTreeMap`, which must agree after every step.
//!
//! Segments are tiny (4 KiB) so that rolls, hint files and compaction happen in short
//! sequences. The store runs with `SyncPolicy::Never` on a file seam that tracks what the
//! engine synced, so a crash may lose the unsynced tail of the active segment: `Crash` cuts
//! that segment at a random byte offset past its synced length (every other segment must be
//! wholly synced), and the model keeps the operations
//! whose records lie wholly before the cut (found by reading the file independently).
//!
//! Cases: 64 by default; set `PROPTEST_CASES` for more.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use common::{active_segment, dump, records, segments, truncate, SyncTrackingVfs};
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const DEFAULT_CASES: u32 = 64;
const KEYS: u8 = 24;
const PREFIXES: [&str; 7] = ["", "a", "b", "c", "a0", "b1", "c2"];

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

#[derive(Debug, Clone)]
enum Action {
    Put(u8, Val),
    Delete(u8),
    Batch(Vec<(u8, Option<Val>)>),
    Range {
        lo: u8,
        hi: u8,
        inclusive: bool,
        rev: bool,
    },
    Prefix(usize, bool),
    Flush,
    Reopen,
    Compact,
    /// Cut the active segment at this per-mille of the unsynced part.
    Crash(u16),
}

fn key(k: u8) -> Vec<u8> {
    let letter = [b'a', b'b', b'c'][usize::from(k % 3)];
    format!("{}{k:02}", letter as char).into_bytes()
}

/// A value, generated from a seed and a length so that failures print (and shrink) compactly.
#[derive(Clone, Copy)]
struct Val(u32, u16);

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}x{}", self.0, self.1)
    }
}

impl Val {
    fn bytes(self) -> Vec<u8> {
        let mut x = self.0.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..self.1)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }
}

fn value() -> impl Strategy<Value = Val> {
    (any::<u32>(), 0u16..400).prop_map(|(seed, len)| Val(seed, len))
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        30 => (0..KEYS, value()).prop_map(|(k, v)| Action::Put(k, v)),
        10 => (0..KEYS).prop_map(Action::Delete),
        10 => proptest::collection::vec((0..KEYS, proptest::option::weighted(0.7, value())), 1..6)
            .prop_map(Action::Batch),
        8 => (0..KEYS, 0..KEYS, any::<bool>(), any::<bool>())
            .prop_map(|(lo, hi, inclusive, rev)| Action::Range { lo, hi, inclusive, rev }),
        4 => (0..PREFIXES.len(), any::<bool>()).prop_map(|(p, rev)| Action::Prefix(p, rev)),
        3 => Just(Action::Flush),
        3 => Just(Action::Reopen),
        4 => Just(Action::Compact),
        4 => (0u16..=1000).prop_map(Action::Crash),
    ]
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// The store under test, the model, and what the model knows about durability.
struct Harness {
    dir: tempfile::TempDir,
    opts: Options,
    store: Option<KvStore>,
    model: Model,
    /// Every committed record since the start, by LSN (a crash drops the lost ones).
    history: Vec<(u64, Ops)>,
    /// What the engine has synced.
    vfs: Arc<SyncTrackingVfs>,
}

impl Harness {
    fn new() -> Result<Self, TestCaseError> {
        let dir = tempfile::tempdir().map_err(fail)?;
        let vfs = Arc::new(SyncTrackingVfs::default());
        let opts = Options::new()
            .vfs(vfs.clone())
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .auto_compaction(false);
        let store = opts.clone().open(dir.path())?;
        let h = Harness {
            dir,
            opts,
            store: Some(store),
            model: Model::new(),
            history: Vec::new(),
            vfs,
        };
        Ok(h)
    }

    fn store(&self) -> Result<&KvStore, TestCaseError> {
        self.store.as_ref().ok_or_else(|| fail("store is closed"))
    }

    /// Whether the active segment is synced to its end.
    fn active_synced(&self) -> Result<bool, TestCaseError> {
        let active = active_segment(self.dir.path()).map_err(fail)?;
        Ok(self.vfs.synced_len(&active.path).map_err(fail)? == active.len)
    }

    fn last_lsn(&self) -> u64 {
        self.history.last().map_or(0, |(lsn, _)| *lsn)
    }

    fn committed(&mut self, lsn: u64, ops: Ops) -> Result<(), TestCaseError> {
        prop_assert_eq!(lsn, self.last_lsn() + 1, "LSNs must follow each other");
        for (k, v) in &ops {
            match v {
                Some(v) => self.model.insert(k.clone(), v.clone()),
                None => self.model.remove(k),
            };
        }
        for (k, _) in &ops {
            let (got, want) = (self.store()?.get(k)?, self.model.get(k));
            prop_assert!(
                got.as_ref() == want,
                "get {} after a write: {:?} bytes, model {:?}",
                String::from_utf8_lossy(k),
                got.as_ref().map(Vec::len),
                want.map(Vec::len)
            );
        }
        self.history.push((lsn, ops));
        Ok(())
    }

    fn check_all(&self) -> Result<(), TestCaseError> {
        let store = self.store()?;
        let actual: Model = dump(store)?.into_iter().collect();
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            actual.keys().chain(self.model.keys()).collect();
        for k in keys {
            let (a, m) = (actual.get(k), self.model.get(k));
            prop_assert!(
                a == m,
                "key {}: store has {:?}, model has {:?} (lengths; last LSN {} vs {})",
                String::from_utf8_lossy(k),
                a.map(Vec::len),
                m.map(Vec::len),
                store.last_lsn(),
                self.last_lsn()
            );
        }
        prop_assert_eq!(store.len(), self.model.len());
        prop_assert_eq!(store.last_lsn(), self.last_lsn());
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), TestCaseError> {
        self.store = None;
        self.store = Some(self.opts.clone().open(self.dir.path())?);
        Ok(())
    }

    /// Simulates a power loss: the unsynced tail of the active segment is cut at a random
    /// offset; the model forgets the records that no longer lie wholly before the cut.
    fn crash(&mut self, per_mille: u16) -> Result<(), TestCaseError> {
        // Closing syncs; what matters is what was synced before, so take the lengths first.
        let active = active_segment(self.dir.path()).map_err(fail)?;
        let floor = self.vfs.synced_len(&active.path).map_err(fail)?;
        for seg in segments(self.dir.path()).map_err(fail)? {
            if seg.id != active.id {
                let synced = self.vfs.synced_len(&seg.path).map_err(fail)?;
                prop_assert!(
                    synced >= seg.len,
                    "segment {} is sealed but only {} of its {} bytes were synced",
                    seg.id,
                    synced,
                    seg.len
                );
            }
        }
        self.store = None;
        let active = active_segment(self.dir.path()).map_err(fail)?;
        // Closing cuts the preallocated zeros off the active segment, synced ones included.
        let floor = floor.min(active.len);
        let cut = floor + (active.len - floor) * u64::from(per_mille) / 1000;
        let surviving = records(&active.path)
            .map_err(fail)?
            .into_iter()
            .take_while(|r| r.offset + r.len <= cut)
            .last()
            .map_or(active.lsn_mark, |r| r.lsn);
        truncate(&active.path, cut).map_err(fail)?;
        self.history.retain(|(lsn, _)| *lsn <= surviving);
        self.model.clear();
        for (_, ops) in &self.history {
            for (k, v) in ops {
                match v {
                    Some(v) => self.model.insert(k.clone(), v.clone()),
                    None => self.model.remove(k),
                };
            }
        }
        self.vfs.reset().map_err(fail)?;
        self.reopen()
    }

    fn step(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Put(k, v) => {
                let lsn = self.store()?.put(key(*k), v.bytes())?;
                self.committed(lsn, vec![(key(*k), Some(v.bytes()))])?;
            }
            Action::Delete(k) => {
                let existed = self.store()?.delete(key(*k))?;
                prop_assert_eq!(existed, self.model.contains_key(&key(*k)));
                if existed {
                    let lsn = self.store()?.last_lsn();
                    self.committed(lsn, vec![(key(*k), None)])?;
                } else {
                    prop_assert_eq!(self.store()?.last_lsn(), self.last_lsn());
                }
            }
            Action::Batch(ops) => {
                let mut batch = WriteBatch::new();
                let ops: Ops = ops
                    .iter()
                    .map(|(k, v)| (key(*k), v.map(Val::bytes)))
                    .collect();
                for (k, v) in &ops {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    };
                }
                let lsn = self.store()?.write_batch(batch)?;
                self.committed(lsn, ops)?;
            }
            Action::Range {
                lo,
                hi,
                inclusive,
                rev,
            } => {
                let lo = Bound::Included(key(*lo));
                let hi = if *inclusive {
                    Bound::Included(key(*hi))
                } else {
                    Bound::Excluded(key(*hi))
                };
                let store = self.store()?;
                let mut expected: Vec<(Vec<u8>, Vec<u8>)> = if key_order_ok(&lo, &hi) {
                    self.model
                        .range((lo.clone(), hi.clone()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                same_items(action, store.range((lo, hi)), &mut expected, *rev)?;
            }
            Action::Prefix(p, rev) => {
                let prefix = PREFIXES[*p].as_bytes();
                let mut expected: Vec<(Vec<u8>, Vec<u8>)> = self
                    .model
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                same_items(
                    action,
                    self.store()?.scan_prefix(prefix),
                    &mut expected,
                    *rev,
                )?;
            }
            Action::Flush => {
                self.store()?.flush()?;
                prop_assert!(
                    self.active_synced()?,
                    "flush left the active segment unsynced"
                );
            }
            Action::Reopen => {
                self.reopen()?;
                self.check_all()?;
            }
            Action::Compact => {
                self.store()?.compact()?;
                self.check_all()?;
            }
            Action::Crash(per_mille) => {
                self.crash(*per_mille)?;
                self.check_all()?;
            }
        }
        Ok(())
    }
}

/// Keys and value lengths, for readable failure messages.
/// Checks that `items`, read forwards or (`rev`) backwards, yields `expected` (given in key
/// order).
fn same_items(
    action: &Action,
    items: kvstore_core::Range,
    expected: &mut Vec<(Vec<u8>, Vec<u8>)>,
    rev: bool,
) -> Result<(), TestCaseError> {
    let actual: Vec<_> = if rev {
        expected.reverse();
        items.rev().collect::<Result<_, _>>()
    } else {
        items.collect::<Result<_, _>>()
    }?;
    prop_assert!(
        actual == *expected,
        "{:?}: store yields {:?}, model {:?}",
        action,
        summary(&actual),
        summary(expected)
    );
    Ok(())
}

fn summary(items: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, usize)> {
    items
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.len()))
        .collect()
}

/// Whether `BTreeMap::range` accepts these bounds (it panics on inverted ones).
fn key_order_ok(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a), Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

fn run_case(actions: &[Action]) -> Result<(), TestCaseError> {
    let mut h = Harness::new()?;
    for action in actions {
        h.step(action)?;
    }
    h.reopen()?;
    h.check_all()
}

#[test]
fn store_matches_a_btreemap_model() -> Result<(), Box<dyn std::error::Error>> {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&proptest::collection::vec(action(), 1..80), |actions| {
            run_case(&actions)
        })
        .map_err(|e| e.to_string().into())
}
