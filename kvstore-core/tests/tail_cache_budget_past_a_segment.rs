//! `Options::tail_cache_bytes` takes any `usize`; `usize::MAX` ("cache all of it") used to
//! make the first write panic inside the commit leader (rounding the budget up to whole
//! chunks overflowed) and poison the store. The cache mirrors the active segment only, so a
//! budget past a segment now caches one segment.

use std::panic::{catch_unwind, AssertUnwindSafe};

use kvstore_core::{Error, Options};

#[test]
fn a_huge_tail_cache_budget_is_refused_at_open_or_works() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("no temp dir")
    };
    let store = match Options::new().tail_cache_bytes(usize::MAX).open(dir.path()) {
        Err(Error::InvalidOptions(_)) => return, // refusing it up front is fine
        Err(e) => panic!("open failed unexpectedly: {e}"),
        Ok(store) => store,
    };
    let put = catch_unwind(AssertUnwindSafe(|| store.put(b"k", b"v")));
    let poisoned = store.stats().poisoned;
    match put {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("put on a store opened with tail_cache_bytes(usize::MAX) failed: {e}"),
        Err(_) => panic!(
            "put on a store opened with tail_cache_bytes(usize::MAX) panicked \
             (store now poisoned: {poisoned})"
        ),
    }
    assert_eq!(store.get(b"k").ok().flatten(), Some(b"v".to_vec()));
}
