//! `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`: `[next-cursor, [keys…]]`, walking
//! the keys in order, `COUNT` keys examined per call (default 10). Cursor `0` starts and a
//! returned `0` ends the walk; cursors are numbers as Redis clients expect (see
//! `scan_cursors`). Every key present for the whole walk is returned exactly once.

use std::ops::Bound;

use kvstore_core::prefix_end;

use super::args::{not_an_integer, syntax_error};
use super::{Args, Ctx};
use crate::frame::Frame;
use crate::glob::Glob;

/// Keys examined per call when no `COUNT` is given (Redis's default).
const DEFAULT_SCAN_COUNT: u64 = 10;
/// Most keys examined per call, whatever `COUNT` asks, so one call's reply stays bounded.
const MAX_SCAN_COUNT: u64 = 100_000;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    // Leading zeros are fine in a cursor, as Redis reads it with `strtoul`.
    let cursor = args.next_bytes().and_then(|c| {
        let digits = c.len() - c.iter().take_while(|b| **b == b'0').count();
        let c = if digits == 0 {
            &b"0"[..]
        } else {
            &c[c.len() - digits..]
        };
        crate::parse::parse_int(c).ok_or_else(invalid_cursor)
    })?;
    let cursor = u64::try_from(cursor).map_err(|_| invalid_cursor())?;
    let mut pattern = None;
    let mut count = DEFAULT_SCAN_COUNT;
    let mut only_strings = true;
    while let Some(option) = args.next_opt() {
        if option.eq_ignore_ascii_case(b"MATCH") {
            pattern = Some(Glob::new(args.next_bytes().map_err(|_| syntax_error())?));
        } else if option.eq_ignore_ascii_case(b"COUNT") {
            // Signed, as Redis reads it: a count below 1 (negative included) is a syntax
            // error, not a malformed integer.
            let wanted = args.next_int().map_err(|e| match e {
                e if e == not_an_integer() => e,
                _ => syntax_error(),
            })?;
            count = u64::try_from(wanted)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(syntax_error)?;
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            only_strings = args
                .next_bytes()
                .map_err(|_| syntax_error())?
                .eq_ignore_ascii_case(b"string");
        } else {
            return Err(syntax_error());
        }
    }
    let count = count.min(MAX_SCAN_COUNT);
    let prefix = pattern
        .as_ref()
        .map(Glob::literal_prefix)
        .unwrap_or_default();
    let start = if cursor == 0 {
        Bound::Included(prefix.clone())
    } else {
        let resume = ctx.node.cursors.lock().resume_key(cursor);
        match resume {
            Some(key) if key >= prefix => Bound::Excluded(key),
            Some(_) => Bound::Included(prefix.clone()),
            None => return Err(invalid_cursor()),
        }
    };
    let end = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        prefix_end(&prefix)
    };
    let mut keys = Vec::new();
    let mut key_bytes = 0usize;
    let mut last = None;
    let mut more = false;
    // Keys only, from the index: listing keys reads no value. One more than `count` tells
    // whether the page ends the scan.
    let page = ctx.node.store.keys(
        (start, end),
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .saturating_add(1),
    );
    for (examined, key) in page.into_iter().enumerate() {
        // A page also ends once its keys reach the reply limit (keys may be 64 KiB each):
        // the cursor resumes after the last key returned, so nothing is skipped.
        if examined as u64 == count || key_bytes >= ctx.node.config.max_reply_bytes {
            more = true;
            break;
        }
        if only_strings && pattern.as_ref().is_none_or(|p| p.matches(&key)) {
            key_bytes += key.len();
            keys.push(Frame::Bulk(key.clone()));
        }
        last = Some(key);
    }
    let next = match (more, last) {
        (true, Some(last)) => ctx.node.cursors.lock().open(last),
        _ => 0,
    };
    Ok(Frame::Array(vec![
        Frame::Bulk(next.to_string().into_bytes()),
        Frame::Array(keys),
    ]))
}

fn invalid_cursor() -> Frame {
    Frame::error("ERR invalid cursor")
}
