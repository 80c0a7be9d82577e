//! An unclosed `[` in a pattern behaves as in Redis's `stringmatchlen` (observed with
//! redis-server 7.0.15, `KEYS`): the class runs to the end of the pattern, so `[` and `key[`
//! match nothing (not even themselves), and `key[a` matches `keya`.

use kvstore_net::Glob;

#[test]
fn an_unclosed_class_runs_to_the_end_of_the_pattern() {
    assert!(!Glob::new(b"[").matches(b"["));
    assert!(!Glob::new(b"[").matches(b""));
    assert!(!Glob::new(b"key[").matches(b"key["));
    assert!(!Glob::new(b"key[").matches(b"key"));
    assert!(Glob::new(b"key[a").matches(b"keya"));
    assert!(!Glob::new(b"key[a").matches(b"key[a"));
}

#[test]
fn a_trailing_backslash_matches_itself() {
    assert!(Glob::new(b"a\\").matches(b"a\\"));
}
