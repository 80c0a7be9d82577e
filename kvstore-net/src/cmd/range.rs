//! `RANGE start end [LIMIT n]`: the pairs with `start <= key < end` in key order, as a flat
//! array `[k1, v1, k2, v2, …]`. An empty `start` or `end` means unbounded on that side.
//! At most `LIMIT` pairs (default [`DEFAULT_RANGE_LIMIT`], at most [`MAX_RANGE_LIMIT`]);
//! to read further, call again with the last key returned plus a zero byte as `start`.
//! Pairs adding up to more than the server's `max_reply_bytes` get `-ERR reply exceeds …`
//! (an error, not a shorter page, so a short page always means the range ended).

use std::ops::Bound;

use super::args::syntax_error;
use super::{reply_budget, store_error, Args, Ctx};
use crate::frame::Frame;

/// Pairs returned when no `LIMIT` is given.
pub const DEFAULT_RANGE_LIMIT: u64 = 1_000;
/// Largest accepted `LIMIT`, so one reply stays bounded in memory.
pub const MAX_RANGE_LIMIT: u64 = 100_000;

fn bound(key: Vec<u8>, inclusive: bool) -> Bound<Vec<u8>> {
    match (key.is_empty(), inclusive) {
        (true, _) => Bound::Unbounded,
        (false, true) => Bound::Included(key),
        (false, false) => Bound::Excluded(key),
    }
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let start = args.next_bytes()?;
    let end = args.next_bytes()?;
    let mut limit = DEFAULT_RANGE_LIMIT;
    while let Some(option) = args.next_opt() {
        if !option.eq_ignore_ascii_case(b"LIMIT") {
            return Err(syntax_error());
        }
        limit = args.next_u64()?;
        if !(1..=MAX_RANGE_LIMIT).contains(&limit) {
            return Err(Frame::error(format!(
                "ERR LIMIT must be between 1 and {MAX_RANGE_LIMIT}"
            )));
        }
    }
    let range = (bound(start.to_vec(), true), bound(end.to_vec(), false));
    let mut out = Vec::new();
    if let (Bound::Included(a), Bound::Excluded(b)) = (&range.0, &range.1) {
        if a >= b {
            return Ok(Frame::Array(out));
        }
    }
    let mut bytes = 0;
    for item in ctx.node.store.range(range).take(limit as usize) {
        let (key, value) = item.map_err(store_error)?;
        reply_budget(ctx.node, &mut bytes, key.len() + value.len(), "lower LIMIT")?;
        out.push(Frame::Bulk(key));
        out.push(Frame::Bulk(value));
    }
    Ok(Frame::Array(out))
}
